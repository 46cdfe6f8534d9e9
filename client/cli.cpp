#include "client/cli.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "client/cli_values.h"
#include "client/completions.h"
#include "client/top_options.h"
#include "client/workflow_options.h"
#include "common/duration.h"
#include "common/signal_name.h"
#include "common/size.h"
#include "common/version.h"

namespace tg::client {

namespace {

// The daemon's bound on group limits.
constexpr std::int64_t kMaxGroupLimit = 1'000'000;

template <class T>
std::optional<T> if_given(const CLI::Option* option, const T& value) {
  return option->count() > 0 ? std::optional<T>(value) : std::nullopt;
}

std::optional<std::int64_t> duration_ms(const CLI::Option* option, const std::string& text) {
  if (option->count() == 0) return std::nullopt;
  return (*parse_duration(text)).count();  // kDuration has accepted it.
}

// --label KEY=VALUE..., which kLabel has accepted; a key given twice is a usage error.
proto::Labels labels_of(const std::string& command, const std::vector<std::string>& given) {
  proto::Labels out;
  for (const std::string& s : given) {
    const std::size_t eq = s.find('=');
    if (!out.emplace(s.substr(0, eq), s.substr(eq + 1)).second) {
      throw CLI::ValidationError(command, "label '" + s.substr(0, eq) + "' is given twice");
    }
  }
  if (out.size() > proto::kMaxLabels) {
    throw CLI::ValidationError(command,
                               "at most " + std::to_string(proto::kMaxLabels) + " labels a task");
  }
  return out;
}

std::vector<proto::TaskState> states_of(const std::vector<std::string>& names) {
  std::vector<proto::TaskState> out;
  for (const auto& n : names) out.push_back(proto::task_state_from_string(n));  // Checked.
  return out;
}

// The command line, bound to CLI11 options. Each subcommand's callback turns what it bound into
// `command_`; CLI11 runs it inside parse(), so usage errors thrown there exit 2 like any other.
// Only one subcommand is parsed, so subcommands share the variables they bind to.
class Parser {
 public:
  Parser() {
    app_.require_subcommand(1);
    app_.fallthrough();  // Global options are accepted after the subcommand too.
    app_.set_version_flag("--version", std::string(kVersion));
    tag(app_.add_option("--socket", socket_,
                        "the daemon's socket (default: $TASKGROUPD_SOCKET, else "
                        "$XDG_RUNTIME_DIR/taskgroupd/control.sock if it exists, else "
                        "/run/taskgroupd/control.sock)")
            ->type_name("PATH"),
        ValueKind::kFile);
    add_submit();
    add_list();
    add_show_and_logs();
    add_groups();
    add_pause_and_resume();
    add_cancel_and_wait();
    add_status_and_reload();
    add_kill();
    add_restart();
    top_.add_to(app_, command_, kinds_);
    add_completions();
  }

  // The definition, for completion scripts and their tests.
  [[nodiscard]] const CLI::App& app() const { return app_; }
  [[nodiscard]] const ValueKinds& kinds() const { return kinds_; }

  std::variant<Invocation, int> parse(int argc, const char* const* argv, std::ostream& out,
                                      std::ostream& err) {
    try {
      app_.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return app_.exit(e, out, err);  // --help, --version.
      err << "tgctl: " << message(e) << '\n';
      return kExitUsage;
    }
    if (completions_for_) {  // Like --help: printed from the definition, no daemon involved.
      out << completion_script(completion_commands(app_, kinds_), *completions_for_);
      return kExitOk;
    }
    return Invocation{if_given(socket_option(), socket_), std::move(command_)};
  }

 private:
  const CLI::Option* socket_option() const { return app_.get_option("--socket"); }

  // CLI11's message, with where to find help.
  std::string message(const CLI::ParseError& e) const {
    if (app_.get_subcommands().empty() && !app_.remaining().empty()) {
      return "unknown command '" + app_.remaining().front() + "' (see 'tgctl --help')";
    }
    std::string help = "tgctl";
    for (const CLI::App* sub = &app_; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      help += " " + sub->get_name();
    }
    return std::string(e.what()) + " (see '" + help + " --help')";
  }

  // Records what `option` takes, for the completion scripts to complete it with.
  CLI::Option* tag(CLI::Option* option, ValueSpec spec) {
    kinds_.insert_or_assign(option, std::move(spec));
    return option;
  }
  CLI::Option* add_group_option(CLI::App* sub, const std::string& help) {
    return tag(sub->add_option("-g,--group", group_, help)->check(kGroupName)->type_name("GROUP"),
               ValueKind::kGroup);
  }
  CLI::Option* add_group_positional(CLI::App* sub) {
    return tag(
        sub->add_option("group", group_, "group name")->check(kGroupName)->type_name("GROUP"),
        ValueKind::kGroup);
  }
  CLI::Option* add_user(CLI::App* sub, const std::string& help) {
    return sub->add_option("--user", user_, help + " (login name or uid; root only)")
        ->type_name("USER");
  }
  CLI::Option* add_json(CLI::App* sub) {
    return sub->add_flag("--json", flag_, "print the daemon's result as JSON, on one line");
  }

  void add_submit();
  void add_list();
  void add_show_and_logs();
  void add_groups();
  void add_pause_and_resume();
  void add_cancel_and_wait();
  void add_status_and_reload();
  void add_kill();
  void add_restart();
  void add_completions();

  CLI::App app_{"tgctl: the client of taskgroupd, a job runner with cancellable task groups",
                "tgctl"};
  std::string socket_;
  Command command_;

  std::string group_;
  std::string user_;
  std::string duration_;
  std::string size_;
  std::string text_;
  std::int64_t number_ = 0;
  int priority_ = 0;
  bool flag_ = false;  // --json, --follow or --force.
  bool shell_ = false;
  bool wide_ = false;
  bool requeue_ = false;
  bool wait_ = false;
  bool fail_fast_ = false;
  bool first_success_ = false;
  std::vector<std::string> argv_;
  std::vector<proto::TaskId> ids_;
  WorkflowOptions workflow_;
  TopOptions top_;
  std::vector<std::string> labels_;  // --label KEY=VALUE...
  std::vector<std::string> states_;  // --state S1,S2...
  std::string key_;
  ValueKinds kinds_;  // What the options that name groups, tasks and files take.
  std::optional<Shell> completions_for_;
};

void Parser::add_submit() {
  CLI::App* sub = app_.add_subcommand("submit", "queue a command, or a batch of commands");
  auto* group = add_group_option(sub, "task group (default: default)");
  auto* timeout = sub->add_option("--timeout", duration_, "stop the task after this long")
                      ->check(kDuration)
                      ->type_name("DURATION");
  auto* priority = sub->add_option("--priority", priority_, "higher runs first (default: 0)")
                       ->check(CLI::Range(proto::kMinPriority, proto::kMaxPriority))
                       ->type_name("N");
  auto* max_log =
      sub->add_option("--max-log", size_, "stop the task once its log is larger (e.g. 100M)")
          ->check(kSize)
          ->type_name("SIZE");
  sub->add_flag("--shell", shell_, "run the command with /bin/sh -c");
  sub->add_flag("--requeue", requeue_, "queue it again if the daemon crashes while it runs");
  workflow_.add_to(*sub, kinds_);
  auto* batch =
      tag(sub->add_option("--batch", text_, "one shell command per line of FILE (- = stdin)")
              ->type_name("FILE"),
          ValueKind::kFile);
  sub->add_option("--label", labels_,
                  "label the task KEY=VALUE (repeatable), for list --label to find it by")
      ->check(kLabel)
      ->type_name("KEY=VALUE");
  auto* key = sub->add_option("--key", key_,
                              "an idempotency key (1-256 bytes): a second submit with the same "
                              "key queues nothing and prints the first task's id")
                  ->check(kSubmitKey)
                  ->type_name("KEY");
  auto* argv = sub->add_option("command", argv_, "the command and its arguments, after --");
  batch->excludes(argv);
  sub->positionals_at_end();  // Everything from the command on is the command's.
  sub->callback([=, this] {
    if (argv_.empty() && batch->count() == 0) {
      throw CLI::ValidationError("submit", "give a command after --, or --batch FILE");
    }
    if (key->count() > 0 && batch->count() > 0) {
      throw CLI::ValidationError(
          "submit", "--key is for one task: a batch line may carry no key (submit it alone)");
    }
    SubmitCommand c;
    if (group->count() > 0) c.group = group_;
    c.options.timeout_ms = duration_ms(timeout, duration_);
    c.options.priority = if_given(priority, priority_);
    if (max_log->count() > 0) c.options.max_log_bytes = *parse_size(size_);  // kSize accepted it.
    if (shell_) c.options.shell = true;
    if (requeue_) c.options.requeue = true;
    workflow_.apply(c.options, now_ms());
    if (!labels_.empty()) c.options.labels = labels_of("submit", labels_);
    c.key = if_given(key, key_);
    c.argv = argv_;
    c.batch = if_given(batch, text_);
    command_ = std::move(c);
  });
}

void Parser::add_list() {
  CLI::App* sub = app_.add_subcommand("list", "list tasks (every match unless --limit)");
  auto* group = add_group_option(sub, "only this group");
  tag(sub->add_option("--state", states_, "only tasks in one of these states")
          ->check(kState)
          ->delimiter(',')
          ->type_name("STATE[,STATE...]"),
      state_words(false));
  sub->add_option("--label", labels_, "only tasks with this label (repeatable: all must match)")
      ->check(kLabel)
      ->type_name("KEY=VALUE");
  auto* since =
      sub->add_option("--since", duration_, "only tasks submitted within the last DURATION")
          ->check(kDuration)
          ->type_name("DURATION");
  auto* limit =
      sub->add_option("--limit", number_, "only the newest N")->check(kPositive)->type_name("N");
  auto* user = add_user(sub, "another user's tasks");
  auto* json = add_json(sub);
  sub->add_flag("--wide", wide_, "show REASON and COMMAND in full, however long the lines get")
      ->excludes(json);
  sub->callback([=, this] {
    ListCommand c;
    // A user names the owner of the group if there is one, else whose tasks to list.
    if (group->count() > 0) {
      c.request.group = proto::GroupRef{group_, if_given(user, user_)};
    } else {
      c.request.user = if_given(user, user_);
    }
    c.request.states = states_of(states_);
    c.request.labels = labels_of("list", labels_);
    c.request.since_ms = duration_ms(since, duration_);
    c.request.limit = if_given(limit, number_);
    c.json = flag_;
    c.wide = wide_;
    command_ = std::move(c);
  });
}

void Parser::add_show_and_logs() {
  CLI::App* show = app_.add_subcommand("show", "show one task");
  tag(show->add_option("id", number_, "task id")->required()->check(kPositive), ValueKind::kTask);
  add_json(show);
  show->callback([this] { command_ = ShowCommand{number_, flag_}; });

  CLI::App* logs = app_.add_subcommand("logs", "print a task's output (stdout and stderr)");
  tag(logs->add_option("id", number_, "task id")->required()->check(kPositive), ValueKind::kTask);
  auto* follow = logs->add_flag("-f,--follow", flag_, "keep printing output until the task ends");
  auto* attempt = logs->add_option("--attempt", priority_, "only this attempt's output (1 = first)")
                      ->check(CLI::Range(1, static_cast<int>(proto::kMaxRetries) + 1))
                      ->type_name("K");
  attempt->excludes(follow);
  logs->callback([=, this] {
    command_ = LogsCommand{number_, flag_, if_given(attempt, priority_)};
  });
}

void Parser::add_groups() {
  CLI::App* groups = app_.add_subcommand("groups", "list task groups");
  auto* groups_user = add_user(groups, "another user's groups");
  add_json(groups);
  groups->callback([=, this] {
    command_ = GroupsCommand{proto::Groups{if_given(groups_user, user_)}, flag_};
  });

  CLI::App* group = app_.add_subcommand("group", "change a task group");
  group->require_subcommand(1);
  CLI::App* set = group->add_subcommand(
      "set", "set a group's limit, fail-fast, first-success and on-done hook");
  add_group_positional(set)->required();
  auto* limit = set->add_option("--limit", number_, "max running tasks of the group (0: no limit)")
                    ->check(CLI::Range(std::int64_t{0}, kMaxGroupLimit))
                    ->type_name("N");
  auto* fail_fast = set->add_flag("--fail-fast,!--no-fail-fast", fail_fast_,
                                  "cancel the group when one of its tasks fails");
  auto* first_success =
      set->add_flag("--first-success,!--no-first-success", first_success_,
                    "when one of its tasks succeeds, cancel the rest of its current tasks "
                    "(reason: goal reached)");
  auto* on_done = set->add_option("--on-done", text_,
                                  "run COMMAND with /bin/sh -c, as the group's owner, each time a "
                                  "run of the group has ended; '' removes it")
                      ->type_name("COMMAND");
  auto* user = add_user(set, "another user's group");
  set->callback([=, this] {
    proto::GroupSet request;
    request.group = proto::GroupRef{group_, if_given(user, user_)};
    request.limit = if_given(limit, number_);
    request.fail_fast = if_given(fail_fast, fail_fast_);
    request.first_success = if_given(first_success, first_success_);
    request.on_done = if_given(on_done, text_);
    command_ = GroupSetCommand{std::move(request)};
  });
}

void Parser::add_pause_and_resume() {
  CLI::App* pause = app_.add_subcommand("pause", "start no more tasks of a group");
  add_group_positional(pause)->required();
  auto* pause_user = add_user(pause, "another user's group");
  pause->callback([=, this] {
    command_ = PauseCommand{proto::Pause{proto::GroupRef{group_, if_given(pause_user, user_)}}};
  });

  CLI::App* resume = app_.add_subcommand("resume", "start a paused group's tasks again");
  add_group_positional(resume)->required();
  auto* resume_user = add_user(resume, "another user's group");
  resume->callback([=, this] {
    command_ = ResumeCommand{proto::Resume{proto::GroupRef{group_, if_given(resume_user, user_)}}};
  });
}

void Parser::add_cancel_and_wait() {
  for (const bool cancel : {true, false}) {
    CLI::App* sub =
        cancel ? app_.add_subcommand("cancel", "cancel a group's tasks, or tasks by id")
               : app_.add_subcommand("wait", "wait until a group's tasks, or tasks by id, end");
    auto* group = add_group_positional(sub);
    auto* tasks = tag(sub->add_option("--task", ids_, "task ids instead of a group")
                          ->check(kPositive)
                          ->delimiter(',')
                          ->type_name("ID")
                          ->excludes(group),
                      ValueKind::kTask);
    auto* user = add_user(sub, "another user's group")->excludes(tasks);
    CLI::Option* grace = nullptr;
    CLI::Option* timeout = nullptr;
    if (!cancel) {
      timeout = sub->add_option("--timeout", duration_,
                                "give up after this long: exit 124, the tasks go on running")
                    ->check(kDuration)
                    ->type_name("DURATION");
    }
    if (cancel) {
      grace = sub->add_option("--grace", duration_, "SIGKILL what is left after this long")
                  ->check(kDuration)
                  ->type_name("DURATION");
      sub->add_flag("--force", flag_, "SIGKILL running tasks now");
      sub->add_flag("--wait", wait_, "then wait until the cancelled tasks have ended");
    }
    sub->callback([=, this] {
      if (group->count() == 0 && ids_.empty()) {
        throw CLI::ValidationError(sub->get_name(), "give a GROUP or --task ID...");
      }
      std::optional<proto::GroupRef> ref;
      if (group->count() > 0) ref = proto::GroupRef{group_, if_given(user, user_)};
      if (cancel) {
        command_ =
            CancelCommand{proto::Cancel{ref, ids_, duration_ms(grace, duration_), flag_}, wait_};
      } else {
        std::optional<std::chrono::milliseconds> give_up;
        if (const auto ms = duration_ms(timeout, duration_))
          give_up = std::chrono::milliseconds(*ms);
        command_ = WaitCommand{proto::Wait{ref, ids_, false}, give_up};
      }
    });
  }
}

void Parser::add_status_and_reload() {
  CLI::App* status = app_.add_subcommand("status", "show the daemon's version, limits and counts");
  add_json(status);
  status->callback([this] { command_ = StatusCommand{flag_}; });

  CLI::App* reload = app_.add_subcommand("reload", "make the daemon re-read its config file");
  reload->callback([this] { command_ = ReloadCommand{}; });

  CLI::App* reexec = app_.add_subcommand(
      "reexec", "make the daemon re-execute its binary in place (after an upgrade); tasks run on");
  reexec->callback([this] { command_ = ReexecCommand{}; });
}

void Parser::add_kill() {
  CLI::App* sub = app_.add_subcommand(
      "kill", "send a signal to running tasks, by id or of a group; their state is unchanged");
  tag(sub->add_option("-s,--signal", text_,
                      "the signal: a name (USR1, SIGUSR1, HUP, STOP, CONT, ...) or a number")
          ->required()
          ->check(kSignal)
          ->type_name("SIGNAL"),
      signal_words());
  auto* group = add_group_option(sub, "every running task of this group");
  auto* ids = tag(sub->add_option("id", ids_, "task ids")->check(kPositive)->type_name("ID"),
                  ValueKind::kTask);
  ids->excludes(group);
  auto* user = add_user(sub, "another user's group")->excludes(ids);
  add_json(sub);
  sub->callback([=, this] {
    if (group->count() == 0 && ids_.empty()) {
      throw CLI::ValidationError("kill", "give task IDs or -g GROUP");
    }
    std::optional<proto::GroupRef> ref;
    if (group->count() > 0) ref = proto::GroupRef{group_, if_given(user, user_)};
    command_ = KillCommand{proto::Kill{ref, ids_, *signal_from_text(text_)}, flag_};
  });
}

void Parser::add_restart() {
  CLI::App* sub = app_.add_subcommand(
      "restart",
      "queue ended tasks again as new tasks (same group, command, cwd, environment and options); "
      "prints the new ids");
  auto* ids =
      tag(sub->add_option("id", ids_, "ended tasks to restart")->check(kPositive)->type_name("ID"),
          ValueKind::kTask);
  auto* group =
      add_group_option(sub, "restart this group's tasks (with --failed or --state)")->excludes(ids);
  auto* failed =
      sub->add_flag("--failed", flag_, "with -g: its failed, timed_out, interrupted and lost tasks")
          ->needs(group);
  auto* state =
      tag(sub->add_option("--state", states_,
                          "with -g: its tasks in these ended states (e.g. cancelled,failed)")
              ->check(kEndedState)
              ->delimiter(',')
              ->type_name("STATE[,STATE...]")
              ->needs(group),
          state_words(true));
  auto* user = add_user(sub, "another user's group")->needs(group);
  sub->callback([=, this] {
    if (ids_.empty() && group->count() == 0) {
      throw CLI::ValidationError("restart", "give task IDs, or -g GROUP with --failed or --state");
    }
    proto::Restart r;
    r.ids = ids_;
    if (group->count() > 0) {
      if (failed->count() == 0 && state->count() == 0) {
        throw CLI::ValidationError("restart", "with -g, say which tasks: --failed or --state");
      }
      r.group = proto::GroupRef{group_, if_given(user, user_)};
      if (flag_) {
        r.states = {proto::TaskState::kFailed, proto::TaskState::kTimedOut,
                    proto::TaskState::kInterrupted, proto::TaskState::kLost};
      }
      for (proto::TaskState st : states_of(states_)) {
        if (std::find(r.states.begin(), r.states.end(), st) == r.states.end()) {
          r.states.push_back(st);
        }
      }
    }
    command_ = RestartCommand{std::move(r)};
  });
}

void Parser::add_completions() {
  CLI::App* sub = app_.add_subcommand(
      "completions", "print the completion script for bash, zsh or fish (see docs/usage.md)");
  tag(sub->add_option("shell", text_, "bash, zsh or fish")
          ->required()
          ->check(CLI::IsMember({"bash", "zsh", "fish"}))
          ->type_name("SHELL"),
      std::vector<std::string>{"bash", "zsh", "fish"});
  sub->callback([this] {
    completions_for_ = text_ == "bash" ? Shell::kBash : text_ == "zsh" ? Shell::kZsh : Shell::kFish;
  });

  // Hidden (no help group): what the completion scripts call for the daemon's names.
  CLI::App* complete = app_.add_subcommand("__complete", "")->group("");
  complete->add_option("what", text_)->required()->check(CLI::IsMember({"groups", "tasks"}));
  complete->callback([this] {
    command_ = CompleteCommand{text_ == "groups" ? ValueKind::kGroup : ValueKind::kTask};
  });
}

}  // namespace

void visit_cli(const std::function<void(const CLI::App&, const ValueKinds&)>& use) {
  const Parser parser;
  use(parser.app(), parser.kinds());
}

std::variant<Invocation, int> parse_args(int argc, const char* const* argv, std::ostream& out,
                                         std::ostream& err) {
  Parser parser;
  return parser.parse(argc, argv, out, err);
}

}  // namespace tg::client
