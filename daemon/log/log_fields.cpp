#include "daemon/log/log_fields.h"

#include "daemon/model/group.h"
#include "daemon/model/task.h"

namespace tg::daemon {

namespace {

// Set only for the length of a LogFieldsScope, so nothing outlives a log call.
thread_local const LogFields* tl_current = nullptr;

}  // namespace

LogFields log_fields(const Task& t) { return LogFields{t.id, t.group, t.uid}; }

LogFields log_fields(const Group& g) { return LogFields{std::nullopt, g.key.name, g.key.uid}; }

LogFieldsScope::LogFieldsScope(const LogFields& fields) : outer_(tl_current) {
  tl_current = &fields;
}

LogFieldsScope::~LogFieldsScope() { tl_current = outer_; }

const LogFields* LogFieldsScope::current() { return tl_current; }

}  // namespace tg::daemon
