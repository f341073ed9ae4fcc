<?php
// relwatch recipe for Deployer 7.
//
//   require 'contrib/relwatch.php';   // or: require __DIR__ . '/vendor/.../relwatch.php';
//
// After deploy:symlink it waits until every process runs the new release (relwatch wait), and it
// replaces deploy:cleanup with one that skips, and says so, every old release a running process
// still uses, or that relwatch cannot tell is unused (relwatch in-use). relwatch must be
// installed on the hosts.
//
// relwatch sees every process only as root. As the deploy user it runs `sudo -n relwatch ...`
// when the sudo rule /usr/share/relwatch/sudoers is installed (see its header), and plain
// `relwatch ...` otherwise, which answers "cannot tell" (exit 3) over processes it may not read:
// the wait then fails the deploy, and the cleanup keeps every old release, saying why.
//
// Opt in to restarting what still runs an old or deleted release right after the switch, through
// its supervisor (`relwatch wait --restart`, docs/RESTART.md): set('relwatch_restart', true). It
// needs root: deploy as root, or add a sudo rule for exactly that command (docs/RESTART.md); the
// shipped rule does not allow it. Off by default: the wait then only waits.

namespace Deployer;

set('relwatch_bin', 'relwatch');
set('relwatch_timeout', '5m');
set('relwatch_restart', false);

// The command line that runs relwatch with $args: through sudo when the host's sudo rule allows
// exactly that command, else as the deploy user.
function relwatch_command(string $args): string
{
    $bin = get('relwatch_bin');
    $allowed = test("[ \"\$(id -u)\" != 0 ] && command -v sudo >/dev/null && sudo -n -l $bin $args >/dev/null 2>&1");
    return ($allowed ? 'sudo -n ' : '') . "$bin $args";
}

// Run relwatch with $args and return [exit status, output]; it never throws on a non-zero status.
function relwatch_run(string $args): array
{
    $out = run(relwatch_command($args) . ' 2>&1; echo "relwatch-exit=$?"');
    $lines = explode("\n", rtrim($out));
    $last = array_pop($lines);
    $status = (int) substr($last, strlen('relwatch-exit='));
    return [$status, implode("\n", $lines)];
}

// Why relwatch answered 3, and what fixes it.
const RELWATCH_BLIND = 'relwatch could not see every process (install the sudo rule /usr/share/relwatch/sudoers, see its header, or deploy as root)';

desc('Waits until every process runs the new release');
task('relwatch:wait', function () {
    $restart = get('relwatch_restart') ? ' --restart' : '';
    [$status, $out] = relwatch_run('wait {{deploy_path}} --timeout {{relwatch_timeout}}' . $restart);
    writeln($out);
    // 1 (timeout), 2 (a deleted release, a broken current link) and 3 (cannot tell) fail the deploy.
    if ($status === 3) {
        throw error('relwatch: cannot tell whether every process runs the new release: ' . RELWATCH_BLIND);
    }
    if ($status !== 0) {
        throw error("relwatch wait failed with status $status");
    }
});
after('deploy:symlink', 'relwatch:wait');

desc('Cleans up old releases that no process uses');
task('deploy:cleanup', function () {
    $releases = get('releases_list'); // newest first
    $keep = (int) get('keep_releases');
    $current = run('readlink -f {{current_path}}');
    if ($keep < 1) {
        return;
    }
    foreach (array_slice($releases, $keep) as $release) {
        $path = "{{deploy_path}}/releases/$release";
        if (run("readlink -f $path") === $current) {
            continue;
        }
        // in-use exits 0 when no process uses the path, 1 when one does, 3 when it cannot tell.
        [$status, $out] = relwatch_run("in-use $path");
        if ($status === 0) {
            run("rm -rf $path");
        } elseif ($status === 1) {
            warning("relwatch: keeping $path: a running process still uses it (run: relwatch in-use $path)");
        } elseif ($status === 3) {
            warning("relwatch: keeping $path: cannot tell whether a process uses it: " . RELWATCH_BLIND . "\n$out");
        } else {
            warning("relwatch: keeping $path: relwatch in-use failed with status $status\n$out");
        }
    }
});
