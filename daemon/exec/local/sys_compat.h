#pragma once

// glibc 2.36's <sys/pidfd.h> lacks extern "C"; include it only through this header.
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
