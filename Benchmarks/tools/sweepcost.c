// SPDX-License-Identifier: MIT
// cssd: QMP control server for the s390 channel subsystem.
//
// What the sweep's `online` reads cost over a whole tree (issue 25), as against readcost.c's
// one file read again and again: every device's `0.S.XXXX/0.S.XXXX/online` relative to the
// css directory (as the sweep reads it: a walk of three components), then relative to the
// device directory held open (one component), for the first COUNT subchannels of a tree made
// by Benchmarks/sysfs_scale.py (device number = subchannel number). The second needs COUNT
// descriptors (RLIMIT_NOFILE). CPU time of the process per read, ROUNDS rounds each:
//   cc -O2 -o /tmp/sweepcost Benchmarks/tools/sweepcost.c
//   /tmp/sweepcost TREE/devices/css0 19000 3
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s CSS_DIR COUNT ROUNDS\n", argv[0]);
        return 2;
    }
    int css = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int count = atoi(argv[2]), rounds = atoi(argv[3]);
    if (css < 0 || count <= 0) {
        perror(argv[1]);
        return 1;
    }
    char (*names)[32] = malloc((size_t)count * 32);
    int *dirs = malloc((size_t)count * sizeof(int));
    char buffer[4096], path[64];
    for (int i = 0; i < count; i++)
        snprintf(names[i], 32, "0.%x.%04x/0.%x.%04x", i / 65536, i % 65536, i / 65536, i % 65536);
    for (int round = 0; round < rounds; round++) {
        int missing = 0;
        double began = cpu_seconds();
        for (int i = 0; i < count; i++) {
            snprintf(path, sizeof path, "%s/online", names[i]);
            int fd = openat(css, path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) { missing++; continue; }
            if (read(fd, buffer, sizeof buffer) < 0) perror(path);
            close(fd);
        }
        printf("relative to the css directory: %.2f us a read (%d missing)\n",
               (cpu_seconds() - began) / count * 1e6, missing);
    }
    struct rlimit limit = {(rlim_t)count + 64, (rlim_t)count + 64};
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) perror("setrlimit (the held descriptors may fail)");
    int held = 0;
    for (int i = 0; i < count; i++) {
        dirs[i] = openat(css, names[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        held += dirs[i] >= 0;
    }
    for (int round = 0; round < rounds; round++) {
        double began = cpu_seconds();
        for (int i = 0; i < count; i++) {
            if (dirs[i] < 0) continue;
            int fd = openat(dirs[i], "online", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
            if (fd < 0) continue;
            if (read(fd, buffer, sizeof buffer) < 0) perror("online");
            close(fd);
        }
        printf("relative to the held device directory: %.2f us a read (%d of %d held)\n",
               (cpu_seconds() - began) / (held ? held : 1) * 1e6, held, count);
    }
    return 0;
}
