// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.
#define _GNU_SOURCE
#include "cssd_signals.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int signal_pipe[2] = {-1, -1};

// Async-signal-safe: write(2) only, errno preserved. A full pipe (64 KiB of pending signals)
// drops the byte: the daemon is already stopping or reloading by then.
static void on_signal(int number) {
    int saved = errno;
    unsigned char byte = (unsigned char)number;
    ssize_t ignored = write(signal_pipe[1], &byte, 1);
    (void)ignored;
    errno = saved;
}

__attribute__((constructor)) static void cssd_signals_install(void) {
    if (pipe2(signal_pipe, O_CLOEXEC) != 0) return;
    // The write end must never block inside a handler.
    fcntl(signal_pipe[1], F_SETFL, fcntl(signal_pipe[1], F_GETFL) | O_NONBLOCK);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
}

int cssd_signal_pipe(void) { return signal_pipe[0]; }
