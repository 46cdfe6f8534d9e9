#pragma once

// The spawn path's system calls, without glibc (only daemon/exec/local/child.cpp includes this).

#include <errno.h>
#include <unistd.h>

#include <type_traits>

namespace tg::daemon::raw {

// The child shares our memory and our thread's TLS (errno included) until it execs, and runs
// at the same time as the loop. So it makes raw system calls that report errors in their
// return value and never touch errno: a glibc wrapper failing in the child could overwrite
// the errno the loop is about to read (Asio tells EAGAIN from a real error by it).
#if defined(__x86_64__) && !defined(TG_SYSCALL_FALLBACK)
constexpr bool kRawSyscalls = true;
[[gnu::always_inline]] inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0,
                                               long d = 0, long e = 0) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  asm volatile("syscall"
               : "=a"(ret)
               : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
               : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__) && !defined(TG_SYSCALL_FALLBACK)
constexpr bool kRawSyscalls = true;
[[gnu::always_inline]] inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0,
                                               long d = 0, long e = 0) {
  register long x8 asm("x8") = n;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  register long x4 asm("x4") = e;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  return x0;
}
#else
// Elsewhere (and with TG_SYSCALL_FALLBACK, which a unit test builds): plain syscall(2), made
// safe by always suspending the parent (CLONE_VFORK) until the child has exec'd or died.
constexpr bool kRawSyscalls = false;
inline long raw_syscall(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  const long r = ::syscall(n, a, b, c, d, e);
  return r < 0 ? -errno : r;
}
#endif

template <typename T>
[[gnu::always_inline]] inline long arg(T v) {
  if constexpr (std::is_pointer_v<T>) {
    return reinterpret_cast<long>(v);
  } else {
    return static_cast<long>(v);
  }
}

}  // namespace tg::daemon::raw
