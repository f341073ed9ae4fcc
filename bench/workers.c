/*
 * workers: start many sleeping worker processes cheaply, and end them.
 *
 *   workers [ANY ARGS...]      (argv is only the workers' command line, e.g. "queue-worker")
 *   stdin:  "COUNT DIR" lines, then a line "go"
 *
 * Forks COUNT children per DIR; each child chdir(2)s into DIR and sleeps in pause(2) until it
 * is killed. No execve per worker: forking this small program cost ~0.6 ms per worker on the
 * reference machine, where spawning /bin/sleep cost ~2.7 ms (20,000 workers: ~12 s instead of
 * ~55 s). The workers' exe is this program's file: bench/run runs one copy from outside the
 * deploy root and one copy from inside the release it later deletes, so those workers have
 * their executable (and cwd) inside a deleted release.
 *
 * Optional fatter workers, to model real ones (php-fpm, gunicorn) that hold more files than a
 * sleeping C program: WORKERS_FDS=K makes each worker hold K more descriptors (dups of
 * /dev/null), WORKERS_MAPS=M makes it map its own executable M more times (M more lines in
 * /proc/PID/maps). lsof and needrestart read those; relwatch and the floor do not.
 *
 * The spec comes on stdin, not argv, so the workers' /proc/PID/cmdline is what the caller
 * chose (argv[0] and all) and does not name the deploy root.
 *
 * Protocol with bench/run:
 *   - reads the spec; prints one line per worker, "PID DIR", then a line "ready";
 *   - then waits until stdin reaches EOF (bench/run closes it, or dies), or SIGTERM;
 *   - then sends SIGKILL to every worker by pid that is still its child, waits for each one
 *     with waitpid(2), and exits 0.
 * bench/run also kills every worker by pid itself before closing stdin; this program is their
 * parent, so it is the one that can reap them. Each worker also asks the kernel to SIGKILL it
 * if this program dies (PR_SET_PDEATHSIG), so nothing outlives a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

#define MAX_DIRS 64

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    static char dirs[MAX_DIRS][4096];
    long counts[MAX_DIRS];
    int ndirs = 0;
    long total = 0;
    static char line[4200];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = '\0';
        if (strcmp(line, "go") == 0)
            break;
        char *sp = strchr(line, ' ');
        if (!sp || ndirs == MAX_DIRS) {
            fprintf(stderr, "workers: bad spec line: %s\n", line);
            return 2;
        }
        *sp = '\0';
        counts[ndirs] = strtol(line, NULL, 10);
        snprintf(dirs[ndirs], sizeof dirs[ndirs], "%s", sp + 1);
        total += counts[ndirs++];
    }
    pid_t *pids = calloc(total ? total : 1, sizeof *pids);
    if (!pids) {
        perror("calloc");
        return 1;
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    pid_t me = getpid();
    long extra_fds = getenv("WORKERS_FDS") ? strtol(getenv("WORKERS_FDS"), NULL, 10) : 0;
    long extra_maps = getenv("WORKERS_MAPS") ? strtol(getenv("WORKERS_MAPS"), NULL, 10) : 0;
    long n = 0;
    int failed = 0;
    fflush(stdout);
    for (int i = 0; i < ndirs && !failed && !stop; i++) {
        const char *dir = dirs[i];
        for (long k = 0; k < counts[i]; k++) {
            pid_t pid = fork();
            if (pid < 0) {
                perror("workers: fork");
                failed = 1;
                break;
            }
            if (pid == 0) {
                signal(SIGTERM, SIG_DFL);
                signal(SIGINT, SIG_DFL);
                signal(SIGHUP, SIG_DFL);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != me)
                    _exit(1);
                if (chdir(dir) != 0)
                    _exit(1);
                if (extra_fds > 0) {
                    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    for (long f = 1; f < extra_fds && null >= 0; f++)
                        dup(null);
                }
                if (extra_maps > 0) {
                    int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
                    for (long m = 0; m < extra_maps && self >= 0; m++)
                        mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, self, 0);
                    if (self >= 0)
                        close(self);
                }
                for (;;)
                    pause();
            }
            pids[n++] = pid;
            printf("%d %s\n", (int)pid, dir);
        }
    }
    printf(failed ? "failed\n" : "ready\n");
    fflush(stdout);

    /* Wait for EOF on stdin (read(2) directly: stdio may hold buffered bytes) or a signal. */
    char c[256];
    while (!stop && !failed) {
        ssize_t r = read(0, c, sizeof c);
        if (r == 0 || (r < 0 && errno != EINTR))
            break;
    }
    for (long i = 0; i < n; i++)
        kill(pids[i], SIGKILL);
    for (long i = 0; i < n; i++)
        while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
            ;
    return failed;
}
