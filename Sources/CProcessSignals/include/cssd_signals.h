// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.
//
// Signals caught from process start. A constructor (run before main) installs handlers for
// SIGTERM, SIGINT and SIGHUP that write the signal's number, one byte, to a pipe; the daemon
// reads the pipe when it is ready to act. So a signal that arrives while cssd is still loading
// its topology or binding its sockets is neither fatal (the default action) nor lost.
#ifndef CSSD_SIGNALS_H
#define CSSD_SIGNALS_H

/// The read end of the signal pipe (blocking, close-on-exec); -1 if the constructor failed.
int cssd_signal_pipe(void);

#endif
