#include "support/test_status.h"

#include <doctest/doctest.h>

namespace tg::test {

namespace {

// Reset each time a test case's body starts (once per subcase path): fixtures made in that run
// see only its failures. The runner is single-threaded.
bool g_failed = false;

// Sees every failed assertion, failing message and exception of the current test case.
class FailureListener : public doctest::IReporter {
 public:
  explicit FailureListener(const doctest::ContextOptions&) {}

  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override { g_failed = false; }
  void test_case_reenter(const doctest::TestCaseData&) override { g_failed = false; }
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override { g_failed = true; }
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& ad) override {
    if (ad.m_failed && (ad.m_at & doctest::assertType::is_warn) == 0) g_failed = true;
  }
  void log_message(const doctest::MessageData& md) override {
    if ((md.m_severity & (doctest::assertType::is_check | doctest::assertType::is_require)) != 0) {
      g_failed = true;  // FAIL() and FAIL_CHECK(); MESSAGE() and WARN() are is_warn.
    }
  }
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

DOCTEST_REGISTER_LISTENER("tg_failure_listener", 1, FailureListener);

bool current_test_failed() { return g_failed; }

}  // namespace tg::test
