#include "daemon/store/store.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/codec.h"
#include "daemon/store/schema.h"

namespace tg::daemon {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A labels column: '' (none) or a JSON object of strings, as insert() wrote it.
std::shared_ptr<const proto::Labels> parse_labels(const std::string& text) {
  if (text.empty()) return nullptr;
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || j.empty()) return nullptr;
  auto labels = std::make_shared<proto::Labels>();
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) labels->emplace(k, v.get<std::string>());
  }
  return labels;
}

std::optional<std::int64_t> opt(const std::optional<int>& v) {
  return v ? std::optional<std::int64_t>(*v) : std::nullopt;
}

}  // namespace

Result<Store> Store::open(const fs::path& file, Options options, const LedgerOptions& ledger) {
  // SQLite creates an empty WAL when it opens a WAL database: a refusal removes that one again.
  const std::string wal = file.string() + "-wal";
  std::error_code ec;
  const bool had_wal = fs::exists(wal, ec);
  auto opened = open_db(file, options, ledger, had_wal);
  if (opened.has_error() && !had_wal && fs::file_size(wal, ec) == 0 && !ec) {
    (void)::unlink(wal.c_str());  // Best effort: an empty WAL changes nothing either.
  }
  return opened;
}

Result<Store> Store::open_db(const fs::path& file, Options options, const LedgerOptions& ledger,
                             bool had_wal) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      file.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "opening '" + file.string() + "'");
  (void)sqlite3_busy_timeout(raw, 2000);  // Only another taskgroupd could hold the lock.
  // Until the database is accepted, closing it must not checkpoint (which would copy a damaged
  // WAL's valid frames into it) nor delete the WAL: a refused start leaves both as they were.
  (void)sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);  // Best effort.
  if (auto r = check_integrity(raw, file); r.has_error()) return r.error();
  auto version = user_version(raw);
  if (version.has_error()) return version.error();
  if (*version > kSchemaVersion) return migrate(raw, file).error();
  std::optional<LedgerCheck> checked;
  if (!ledger.file.empty()) {
    auto c = check_ledger(raw, file, ledger, had_wal);
    if (c.has_error()) return c.error();
    checked = std::move(*c);
  }
  if (auto r = exec(raw, "PRAGMA journal_mode = WAL"); r.has_error()) return r.error();
  if (auto r = exec(raw, "PRAGMA synchronous = FULL"); r.has_error()) return r.error();
  if (auto r = migrate(raw, file); r.has_error()) return r.error();
  Store store(std::move(db), options);
  if (auto r = store.prepare(); r.has_error()) return r.error();
  auto counted = read_db_marks(store.db_.get());
  if (counted.has_error()) return counted.error();
  store.commits_ = store.synced_commits_ = counted->commits;
  store.highest_id_ = counted->seq;
  if (checked) {
    if (auto r = store.adopt_ledger(*checked, ledger); r.has_error()) return r.error();
  }
  (void)sqlite3_db_config(store.db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  return store;
}

Result<void> Store::set_sync(bool sync) {
  sync = sync && options_.durable;
  if (sync == synced_) return {};
  if (auto r = exec(db_.get(), sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
      r.has_error()) {
    return r.error();
  }
  synced_ = sync;
  return {};
}

Result<Txn> Store::begin(bool sync) {
  if (write_failure_) {
    return Error{Errc::kIo, "nothing is saved any more in this run of the daemon: " +
                                *write_failure_ + " (a restart recovers)"};
  }
  if (auto r = set_sync(sync); r.has_error()) return r.error();
  return Txn::begin(db_.get());
}

Result<void> Store::commit(Txn& txn) {
  const std::int64_t n = commits_ + 1;
  if (auto r = count_commit_.bind(1, n).run(); r.has_error()) return r.error();
  auto r = txn.commit();
  if (r.has_error()) {
    if (r.error().code == Errc::kOutcomeUnknown) write_failure_ = r.error().message;
    return r;
  }
  commits_ = n;
  if (synced_) synced_commits_ = n;
  // Before the caller answers anyone. A mark that fails to reach the file leaves an older one,
  // which only makes the next start's check weaker, never refuse a complete database.
  if (ledger_) (void)ledger_->mark(commits_, synced_commits_);
  return r;
}

Result<std::int64_t> Store::synchronous() {
  auto st = Stmt::prepare(db_.get(), "PRAGMA synchronous");
  if (st.has_error()) return st.error();
  auto row = st->step();
  if (row.has_error()) return row.error();
  return *row ? st->int64(0) : 0;
}

Result<void> Store::prepare() {
  auto insert_task = Stmt::prepare(db_.get(), R"sql(
      INSERT INTO tasks (uid, gid, grp, argv, cwd, env_id, shell, priority, timeout_ms, requeue,
                         state, pid, pid_start, exit_code, signal, reason, submitted_at_ms,
                         started_at_ms, ended_at_ms, max_log_bytes, after_ok, after_any,
                         begin_at_ms, retries, retry_delay_ms, labels, submit_key,
                         restarted_from)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
              ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
  )sql");
  auto update_task = Stmt::prepare(db_.get(), R"sql(
      UPDATE tasks SET state = ?2, pid = ?3, pid_start = ?4, exit_code = ?5, signal = ?6,
                       reason = ?7, started_at_ms = ?8, ended_at_ms = ?9, boot_id = ?10,
                       begin_at_ms = ?11, attempt = ?12, cpu_user_ms = ?13,
                       cpu_system_ms = ?14, memory_peak_bytes = ?15
      WHERE id = ?1
  )sql");
  auto insert_attempt = Stmt::prepare(db_.get(), R"sql(
      INSERT OR IGNORE INTO attempts (task_id, n, state, exit_code, signal, reason, started_at_ms,
                                      ended_at_ms, log_end)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
  )sql");
  // `id BETWEEN` makes it a primary-key range scan; the rest picks the group's queued rows.
  auto cancel_queued = Stmt::prepare(db_.get(), R"sql(
      UPDATE tasks SET state = 'cancelled', reason = ?5, ended_at_ms = ?6
      WHERE id BETWEEN ?1 AND ?2 AND uid = ?3 AND grp = ?4 AND state = 'queued'
  )sql");
  auto insert_env = Stmt::prepare(db_.get(), "INSERT OR IGNORE INTO envs (body) VALUES (?1)");
  auto find_env = Stmt::prepare(db_.get(), "SELECT id FROM envs WHERE body = ?1");
  auto save_group = Stmt::prepare(db_.get(), R"sql(
      INSERT INTO groups (uid, name, lim, fail_fast, paused, last_cancel, first_success, on_done)
      VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
      ON CONFLICT (uid, name) DO UPDATE SET lim = ?3, fail_fast = ?4, paused = ?5,
                                            last_cancel = ?6, first_success = ?7, on_done = ?8
  )sql");
  // Both walk the partial index tasks_by_end from its oldest entry (rows before it are gone).
  auto prune_slice = Stmt::prepare(db_.get(), R"sql(
      DELETE FROM tasks WHERE id IN (
        SELECT id FROM tasks
        WHERE ended_at_ms > 0 AND ended_at_ms <= ?1 AND (ended_at_ms < ?1 OR id <= ?2)
        ORDER BY ended_at_ms, id LIMIT ?3)
      RETURNING id, env_id
  )sql");
  // `env_id > 0` repeated so that the partial index tasks_by_env answers it.
  auto drop_env = Stmt::prepare(db_.get(), R"sql(
      DELETE FROM envs
      WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tasks WHERE env_id > 0 AND env_id = ?1)
  )sql");
  auto count_commit = Stmt::prepare(db_.get(), "UPDATE commits SET n = ?1");
  for (auto* r : {&insert_task, &update_task, &cancel_queued, &insert_env, &find_env, &save_group,
                  &prune_slice, &drop_env, &count_commit, &insert_attempt}) {
    if (r->has_error()) return r->error();
  }
  insert_task_ = std::move(*insert_task);
  update_task_ = std::move(*update_task);
  cancel_queued_ = std::move(*cancel_queued);
  insert_env_ = std::move(*insert_env);
  find_env_ = std::move(*find_env);
  save_group_ = std::move(*save_group);
  prune_slice_ = std::move(*prune_slice);
  drop_env_ = std::move(*drop_env);
  count_commit_ = std::move(*count_commit);
  insert_attempt_ = std::move(*insert_attempt);
  return {};
}

Result<std::vector<Task>> Store::load_tasks() {
  auto st = Stmt::prepare(db_.get(), R"sql(
      SELECT id, uid, gid, grp, argv, cwd, env_id, shell, priority, timeout_ms, requeue, state,
             pid, pid_start, exit_code, signal, reason, submitted_at_ms, started_at_ms,
             ended_at_ms, boot_id, max_log_bytes, after_ok, after_any, begin_at_ms, retries,
             retry_delay_ms, attempt, labels, submit_key, restarted_from, cpu_user_ms,
             cpu_system_ms, memory_peak_bytes
      FROM tasks ORDER BY id
  )sql");
  if (st.has_error()) return st.error();
  std::vector<Task> tasks;
  std::string last_labels;  // Neighbours (a batch) share their labels' map.
  std::shared_ptr<const proto::Labels> labels;
  for (;;) {
    auto row = st->step();
    if (row.has_error()) return row.error();
    if (!*row) break;
    Task t;
    t.id = st->int64(0);
    t.uid = static_cast<uid_t>(st->int64(1));
    t.gid = static_cast<gid_t>(st->int64(2));
    t.group = st->text(3);
    json argv = json::parse(st->text(4), nullptr, false);
    if (!argv.is_array()) return Error{Errc::kIo, "task " + std::to_string(t.id) + ": bad argv"};
    for (const auto& a : argv) t.argv.push_back(a.is_string() ? a.get<std::string>() : "");
    t.cwd = st->text(5);
    t.env_id = st->int64(6);
    t.shell = st->int64(7) != 0;
    t.priority = static_cast<int>(st->int64(8));
    t.timeout = std::chrono::milliseconds(st->int64(9));
    t.requeue = st->int64(10) != 0;
    t.state = proto::task_state_from_string(st->text(11));
    if (t.state == TaskState::kInvalid) {
      return Error{Errc::kIo,
                   "task " + std::to_string(t.id) + ": unknown state '" + st->text(11) + "'"};
    }
    t.pid = static_cast<pid_t>(st->int64(12));
    t.pid_start = static_cast<std::uint64_t>(st->int64(13));
    if (auto v = st->opt_int64(14)) t.exit_code = static_cast<int>(*v);
    if (auto v = st->opt_int64(15)) t.signal = static_cast<int>(*v);
    t.reason = st->text(16);
    t.submitted_at = st->int64(17);
    t.started_at = st->int64(18);
    t.ended_at = st->int64(19);
    t.boot_id = st->text(20);
    t.max_log_bytes = st->int64(21);
    auto after = decode_ids(st->text(22)), after_any = decode_ids(st->text(23));
    if (!after || !after_any) {
      return Error{Errc::kIo, "task " + std::to_string(t.id) + ": bad dependencies"};
    }
    t.after = std::move(*after);
    t.after_any = std::move(*after_any);
    t.begin_at = st->int64(24);
    t.retries = static_cast<int>(st->int64(25));
    t.retry_delay = std::chrono::milliseconds(st->int64(26));
    t.attempt = static_cast<int>(st->int64(27));
    if (std::string text = st->text(28); text != last_labels) {
      labels = parse_labels(text);
      last_labels = std::move(text);
    }
    t.labels = labels;
    t.submit_key = st->text(29);  // NULL reads as "": none.
    t.restarted_from = st->int64(30);
    t.cpu_user_ms = st->opt_int64(31);
    t.cpu_system_ms = st->opt_int64(32);
    t.memory_peak_bytes = st->opt_int64(33);
    tasks.push_back(std::move(t));
  }
  if (auto r = load_attempts(tasks); r.has_error()) return r.error();
  return tasks;
}

Result<std::vector<GroupRow>> Store::load_groups() {
  auto st =
      Stmt::prepare(db_.get(),
                    "SELECT uid, name, lim, fail_fast, paused, last_cancel, first_success, on_done "
                    "FROM groups");
  if (st.has_error()) return st.error();
  std::vector<GroupRow> groups;
  for (;;) {
    auto row = st->step();
    if (row.has_error()) return row.error();
    if (!*row) break;
    GroupRow g;
    g.uid = static_cast<uid_t>(st->int64(0));
    g.name = st->text(1);
    g.limit = st->int64(2);
    g.fail_fast = st->int64(3) != 0;
    g.paused = st->int64(4) != 0;
    if (const std::string lc = st->text(5); !lc.empty()) {
      auto record = proto::decode_result<proto::CancelRecord>(json::parse(lc, nullptr, false));
      if (record.has_value()) g.last_cancel = *record;
    }
    g.first_success = st->int64(6) != 0;
    g.on_done = st->text(7);
    groups.push_back(std::move(g));
  }
  return groups;
}

Result<proto::Env> Store::load_env(std::int64_t env_id) {
  auto st = Stmt::prepare(db_.get(), "SELECT body FROM envs WHERE id = ?1");
  if (st.has_error()) return st.error();
  st->bind(1, env_id);
  auto row = st->step();
  if (row.has_error()) return row.error();
  if (!*row) return Error{Errc::kIo, "environment " + std::to_string(env_id) + " is missing"};
  json body = json::parse(st->text(0), nullptr, false);
  proto::Env env;
  if (body.is_object()) {
    for (const auto& [k, v] : body.items()) {
      if (v.is_string()) env.emplace(k, v.get<std::string>());
    }
  }
  return env;
}

Result<void> Store::write_updates(std::span<const Task* const> tasks) {
  for (const Task* t : tasks) {
    update_task_.bind(1, t->id)
        .bind(2, proto::to_string(t->state))
        .bind(3, std::int64_t{t->pid})
        .bind(4, static_cast<std::int64_t>(t->pid_start))
        .bind(5, opt(t->exit_code))
        .bind(6, opt(t->signal))
        .bind(7, t->reason)
        .bind(8, t->started_at)
        .bind(9, t->ended_at)
        .bind(10, t->boot_id)
        .bind(11, t->begin_at)
        .bind(12, std::int64_t{t->attempt})
        .bind(13, t->cpu_user_ms)
        .bind(14, t->cpu_system_ms)
        .bind(15, t->memory_peak_bytes);
    if (auto r = update_task_.run(); r.has_error()) return r.error();
    if (auto r = write_attempts(*t); r.has_error()) return r.error();
  }
  return {};
}

Result<std::int64_t> Store::intern_env(const std::string& body) {
  if (auto r = insert_env_.bind(1, body).run(); r.has_error()) return r.error();
  find_env_.bind(1, body);
  auto row = find_env_.step();
  if (row.has_error()) return row.error();
  const std::int64_t id = *row ? find_env_.int64(0) : 0;
  find_env_.reset();
  if (id == 0) return Error{Errc::kIo, "environment vanished while being stored"};
  return id;
}

Result<void> Store::insert(std::vector<Task>& tasks, std::span<const std::string* const> envs,
                           std::span<const Task* const> updates) {
  auto txn = begin(true);
  if (txn.has_error()) return txn.error();
  if (auto r = reserve_ids(tasks.size()); r.has_error()) return r.error();
  if (auto r = write_updates(updates); r.has_error()) return r.error();
  std::vector<TaskId> ids;
  std::vector<std::int64_t> env_ids;
  ids.reserve(tasks.size());
  env_ids.reserve(tasks.size());
  const std::string* last_body = nullptr;
  std::int64_t env_id = 0;
  const proto::Labels* last_labels = nullptr;  // A batch shares one map: dumped once.
  std::string labels_text;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    const Task& t = tasks[i];
    const std::string* body = i < envs.size() ? envs[i] : nullptr;
    if (body == nullptr) {
      env_id = t.env_id;  // 0, or a restart's: the environment of the task it copies.
    } else if (body != last_body) {
      auto interned = intern_env(*body);
      if (interned.has_error()) return interned.error();
      env_id = *interned;
    }
    last_body = body;
    env_ids.push_back(env_id);
    json argv = t.argv;
    insert_task_.bind(1, std::int64_t{t.uid})
        .bind(2, std::int64_t{t.gid})
        .bind(3, t.group)
        .bind(4, proto::dump_json(argv))
        .bind(5, t.cwd)
        .bind(6, env_id)
        .bind(7, std::int64_t{t.shell})
        .bind(8, std::int64_t{t.priority})
        .bind(9, static_cast<std::int64_t>(t.timeout.count()))
        .bind(10, std::int64_t{t.requeue})
        .bind(11, proto::to_string(t.state))
        .bind(12, std::int64_t{0})
        .bind(13, std::int64_t{0})
        .bind_null(14)
        .bind_null(15)
        .bind(16, t.reason)
        .bind(17, t.submitted_at)
        .bind(18, std::int64_t{0})
        .bind(19, std::int64_t{0})
        .bind(20, t.max_log_bytes)
        .bind(21, encode_ids(t.after))
        .bind(22, encode_ids(t.after_any))
        .bind(23, t.begin_at)
        .bind(24, std::int64_t{t.retries})
        .bind(25, static_cast<std::int64_t>(t.retry_delay.count()));
    if (t.labels.get() != last_labels) {
      last_labels = t.labels.get();
      labels_text = t.labels ? proto::dump_json(json(*t.labels)) : "";
    }
    insert_task_.bind(26, labels_text).bind(28, t.restarted_from);
    if (t.submit_key.empty()) {
      insert_task_.bind_null(27);
    } else {
      insert_task_.bind(27, t.submit_key);
    }
    if (auto r = insert_task_.run(); r.has_error()) return r.error();
    ids.push_back(sqlite3_last_insert_rowid(db_.get()));
  }
  if (auto r = commit(*txn); r.has_error()) return r.error();
  if (!ids.empty()) highest_id_ = std::max(highest_id_, ids.back());
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    tasks[i].id = ids[i];
    tasks[i].env_id = env_ids[i];
  }
  return {};
}

Result<void> Store::update(std::span<const Task* const> tasks,
                           std::span<const QueuedCancel> cancels, std::span<const GroupRow> groups,
                           bool sync) {
  if (tasks.empty() && cancels.empty() && groups.empty()) return {};
  auto txn = begin(sync);
  if (txn.has_error()) return txn.error();
  if (txn.has_error()) return txn.error();
  for (const QueuedCancel& c : cancels) {
    cancel_queued_.bind(1, c.first)
        .bind(2, c.last)
        .bind(3, std::int64_t{c.uid})
        .bind(4, c.group)
        .bind(5, c.reason)
        .bind(6, c.at);
    if (auto r = cancel_queued_.run(); r.has_error()) return r.error();
  }
  for (const GroupRow& g : groups) {
    if (auto r = write_group(g); r.has_error()) return r.error();
  }
  if (auto r = write_updates(tasks); r.has_error()) return r.error();
  return commit(*txn);
}

Result<void> Store::write_group(const GroupRow& g) {
  save_group_.bind(1, std::int64_t{g.uid})
      .bind(2, g.name)
      .bind(3, g.limit)
      .bind(4, std::int64_t{g.fail_fast})
      .bind(5, std::int64_t{g.paused});
  if (g.last_cancel) {
    save_group_.bind(6, proto::dump_json(json(*g.last_cancel)));
  } else {
    save_group_.bind_null(6);
  }
  save_group_.bind(7, std::int64_t{g.first_success}).bind(8, g.on_done);
  return save_group_.run();
}

}  // namespace tg::daemon
