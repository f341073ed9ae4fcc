<?php
// relwatch recipe for Deployer 7.
//
//   require 'contrib/relwatch.php';   // or: require __DIR__ . '/vendor/.../relwatch.php';
//
// After deploy:symlink it waits until every process runs the new release (relwatch wait), and it
// replaces deploy:cleanup with one that skips, and says so, every old release a running process
// still uses (relwatch in-use). relwatch must be installed on the hosts.

namespace Deployer;

set('relwatch_bin', 'relwatch');
set('relwatch_timeout', '5m');

desc('Waits until every process runs the new release');
task('relwatch:wait', function () {
    // Exit 1 (timeout) or 2 (a deleted release, a broken current link) fails the deploy.
    run('{{relwatch_bin}} wait {{deploy_path}} --timeout {{relwatch_timeout}}');
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
        // in-use exits 0 when no process uses the path, 1 when one does, 3 on an error.
        if (test("{{relwatch_bin}} in-use $path")) {
            run("rm -rf $path");
        } else {
            warning("relwatch: keeping $path: a running process still uses it (run: relwatch in-use $path)");
        }
    }
});
