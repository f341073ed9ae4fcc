/*
 * measure: run one command and report its wall time, CPU time and peak memory.
 *
 *   measure RESULT_FILE TIMEOUT_SECONDS CMD [ARGS...]
 *
 * Writes one line to RESULT_FILE:
 *   wall_s user_s sys_s maxrss_kib status
 * where status is the exit code, -SIGNAL, "timeout" or "interrupted".
 *
 * Why a tiny C program and not Python's subprocess + os.wait4: ru_maxrss of a child counts the
 * memory of the address space it replaced at execve(2). Python spawns with vfork (or fork), so
 * the child's ru_maxrss starts at the Python process's own RSS (measured: a 200 MiB Python
 * process makes /bin/true report 214 MiB). This program is ~1 MiB, so that baseline is ~1 MiB
 * (bench/run prints it as the "true" baseline). Wall time is CLOCK_MONOTONIC from just before
 * fork(2) to just after wait4(2); CPU time and peak RSS come from wait4(2)'s rusage, which also
 * counts descendants the command waited for (needrestart's helpers).
 *
 * stdin, stdout and stderr are inherited: the caller points them at /dev/null or files.
 * The child gets its own process group; on timeout, or when this program gets SIGINT, SIGTERM
 * or SIGHUP (Ctrl-C in bench/run), that whole group is killed by its id. This program is a
 * child subreaper (PR_SET_CHILD_SUBREAPER): helpers that the command forked (lsof forks one)
 * and left behind are reparented here, and after the command ends its group is killed and
 * every remaining descendant is reaped before this program exits, so no measured command, nor
 * anything it started, outlives the benchmark.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t timed_out, interrupted;
static void on_alarm(int sig)
{
    (void)sig;
    timed_out = 1;
}
static void on_stop(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: measure RESULT_FILE TIMEOUT_SECONDS CMD [ARGS...]\n");
        return 2;
    }
    const char *result = argv[1];
    unsigned timeout = (unsigned)strtoul(argv[2], NULL, 10);
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm; /* no SA_RESTART: wait4 returns EINTR on timeout */
    sigaction(SIGALRM, &sa, NULL);
    struct sigaction st = {0};
    st.sa_handler = on_stop;
    sigaction(SIGINT, &st, NULL);
    sigaction(SIGTERM, &st, NULL);
    sigaction(SIGHUP, &st, NULL);

    prctl(PR_SET_CHILD_SUBREAPER, 1);
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        setpgid(0, 0);
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    setpgid(pid, pid); /* also here, so the group exists before any kill below */
    if (timeout)
        alarm(timeout);
    int status = 0;
    struct rusage ru;
    pid_t r;
    int killed = 0;
    while ((r = wait4(pid, &status, 0, &ru)) < 0) {
        if (errno != EINTR) {
            perror("wait4");
            return 1;
        }
        if ((timed_out || interrupted) && !killed) {
            kill(-pid, SIGKILL);
            killed = timed_out ? 1 : 2;
        }
    }
    double wall = now() - t0;
    alarm(0);

    /* Whatever the command left in its group goes too; then reap every descendant that was
     * reparented to us. Give up after 10 s (one that left the group and ignores the end). */
    kill(-pid, SIGKILL);
    timed_out = 0;
    alarm(10);
    for (;;) {
        pid_t w = waitpid(-1, NULL, 0);
        if (w > 0)
            continue;
        if (errno == EINTR && !timed_out)
            continue;
        if (errno != ECHILD)
            fprintf(stderr, "measure: descendants of %s still running after 10 s\n", argv[3]);
        break;
    }
    alarm(0);

    FILE *f = fopen(result, "w");
    if (!f) {
        perror(result);
        return 1;
    }
    fprintf(f, "%.6f %.6f %.6f %ld ", wall, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
            ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, ru.ru_maxrss);
    if (killed)
        fprintf(f, killed == 1 ? "timeout\n" : "interrupted\n");
    else if (WIFEXITED(status))
        fprintf(f, "%d\n", WEXITSTATUS(status));
    else
        fprintf(f, "-%d\n", WTERMSIG(status));
    fclose(f);
    return 0;
}
