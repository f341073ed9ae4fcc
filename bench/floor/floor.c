/*
 * floor: the least work any /proc-based release checker must do, and nothing else.
 *
 * For every pid in /proc it opens /proc/PID (O_DIRECTORY), reads `stat` and `cmdline` through
 * that directory, and reads the `cwd` and `exe` links with readlinkat(2). No parsing, no
 * allocation per process, no output per process: one summary line on stdout at the end, so
 * the reads cannot be optimised away and the run can be checked.
 *
 * With --ids it also stats through both links (fstatat(2), following them), which is what
 * relwatch needs to decide "deleted" by link count and to match release directories by
 * (st_dev, st_ino) (DESIGN.md, "/proc"). That variant is reported beside the floor as
 * information; the benchmark's target is against the plain floor.
 *
 * Build: gcc -O2 -o floor floor.c   (bench/run does this for you)
 * See docs/BENCHMARKS.md for why this is C and not Rust.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[65536];

/* Read a whole file relative to dfd; returns bytes read or -1. */
static long read_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            total = -1;
            break;
        }
        if (n == 0)
            break;
        total += n;
    }
    close(fd);
    return total;
}

int main(int argc, char **argv)
{
    int ids = 0;
    const char *proc = "/proc";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ids") == 0)
            ids = 1;
        else if (strcmp(argv[i], "--proc") == 0 && i + 1 < argc)
            proc = argv[++i];
        else {
            fprintf(stderr, "usage: floor [--ids] [--proc DIR]\n");
            return 2;
        }
    }
    int procfd = open(proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = procfd < 0 ? NULL : fdopendir(dup(procfd));
    if (!d) {
        perror(proc);
        return 1;
    }
    long pids = 0, vanished = 0, links = 0, bytes = 0, deleted = 0;
    char link[4096];
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = e->d_name;
        if (*s < '1' || *s > '9')
            continue;
        int fd = openat(procfd, s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            vanished++;
            continue;
        }
        pids++;
        long n = read_at(fd, "stat");
        if (n < 0) {
            vanished++;
            close(fd);
            continue;
        }
        bytes += n;
        n = read_at(fd, "cmdline");
        if (n > 0)
            bytes += n;
        static const char *const names[2] = {"cwd", "exe"};
        for (int k = 0; k < 2; k++) {
            ssize_t l = readlinkat(fd, names[k], link, sizeof link);
            if (l < 0)
                continue;
            links++;
            if (ids) {
                struct stat st;
                if (fstatat(fd, names[k], &st, 0) == 0 && st.st_nlink == 0)
                    deleted++;
            }
        }
        close(fd);
    }
    closedir(d);
    printf("pids %ld vanished %ld links %ld bytes %ld%s", pids, vanished, links, bytes,
           ids ? "" : "\n");
    if (ids)
        printf(" deleted %ld\n", deleted);
    return 0;
}
