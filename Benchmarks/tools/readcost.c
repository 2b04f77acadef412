// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.
//
// What one swept attribute costs (issue 25): openat+read+close, as the sweep reads a file,
// against pread(fd, 0) on a descriptor kept open (sysfs regenerates an attribute on a read at
// offset 0: seq_file restarts there), and the kernel memory a kept descriptor holds (Slab of
// /proc/meminfo before and after opening and reading as many as RLIMIT_NOFILE allows, at most
// 16,000). Run on a real sysfs attribute and on a fixture file on tmpfs:
//   cc -O2 -o /tmp/readcost Benchmarks/tools/readcost.c
//   /tmp/readcost /sys/devices/virtual/net/lo mtu 200000
//   /tmp/readcost TREE/devices/css0 0.0.0001/vpm 200000
// CPU time of the process (CLOCK_PROCESS_CPUTIME_ID), not wall: the machine may be shared.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static long meminfo(const char *key) {
    FILE *f = fopen("/proc/meminfo", "r"); char line[256]; long v = -1;
    while (fgets(line, sizeof line, f)) if (!strncmp(line, key, strlen(key))) { v = atol(line + strlen(key)); break; }
    fclose(f); return v;
}
int main(int argc, char **argv) {
    int dir = open(argv[1], O_RDONLY | O_DIRECTORY); const char *name = argv[2]; int n = atoi(argv[3]);
    char buf[4096];
    double t0 = cpu();
    for (int i = 0; i < n; i++) {
        int fd = openat(dir, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) { perror("openat"); return 1; }
        if (read(fd, buf, sizeof buf) <= 0) { perror("read"); return 1; }
        close(fd);
    }
    double a = (cpu() - t0) / n * 1e6;
    int fd = openat(dir, name, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    t0 = cpu();
    for (int i = 0; i < n; i++) if (pread(fd, buf, sizeof buf, 0) <= 0) { perror("pread"); return 1; }
    double b = (cpu() - t0) / n * 1e6;
    close(fd);
    // Kept fds: how much kernel memory each holds once read (Slab + VmallocUsed + page tables...
    // MemAvailable is the net figure).
    struct rlimit r; getrlimit(RLIMIT_NOFILE, &r); int keep = r.rlim_cur - 16; if (keep > 16000) keep = 16000;
    int *fds = malloc(sizeof(int) * keep);
    // Slab only: MemFree moves with whatever else runs on the machine.
    long s0 = meminfo("Slab:");
    for (int i = 0; i < keep; i++) {
        fds[i] = openat(dir, name, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) { perror("keep"); return 1; }
        if (pread(fds[i], buf, sizeof buf, 0) < 0) { perror("pread"); return 1; }
    }
    long s1 = meminfo("Slab:");
    for (int i = 0; i < keep; i++) close(fds[i]);
    printf("%s/%s: openat+read+close %.2f us CPU, pread(fd, 0) on a kept fd %.2f us CPU (%.1fx); "
           "%d kept and read fds: Slab +%ld KiB, %.2f KiB per fd\n",
           argv[1], name, a, b, a / b, keep, s1 - s0, (double)(s1 - s0) / keep);
    return 0;
}
