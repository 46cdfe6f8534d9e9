// Loaded with LD_PRELOAD into taskgroupd by signals_test.cpp: stops the process while the
// dynamic loader runs the shared libraries' initialisers, that is after the program's own
// .preinit_array functions and before its static constructors and main(). There the test sends
// the signal: a daemon killed by it did not block its signals before main (issue 18, item 9).

#include <signal.h>

namespace {

[[gnu::constructor]] void stop_at_init() { (void)::raise(SIGSTOP); }

}  // namespace
