# relwatch tasks for Capistrano 3. Put this file in lib/capistrano/tasks/.
#
# After deploy:published it waits until every process runs the new release (relwatch wait), and
# it replaces deploy:cleanup with one that skips, and says so, every old release a running
# process still uses (relwatch in-use). relwatch must be installed on the hosts.
#
#   set :relwatch_bin, "relwatch"
#   set :relwatch_timeout, "5m"

namespace :relwatch do
  desc "Wait until every process runs the new release"
  task :wait do
    on release_roles(fetch(:relwatch_roles, :all)) do
      # Exit 1 (timeout) or 2 (a deleted release, a broken current link) fails the deploy.
      execute fetch(:relwatch_bin, "relwatch"), :wait, deploy_to,
              "--timeout", fetch(:relwatch_timeout, "5m")
    end
  end

  desc "Delete old releases beyond :keep_releases that no process uses"
  task :cleanup do
    on release_roles(:all) do |host|
      releases = capture(:ls, "-xt", releases_path).split # newest first
      keep = fetch(:keep_releases, 5)
      current = capture(:readlink, "-f", current_path)
      releases.drop(keep).each do |release|
        path = releases_path.join(release)
        next if capture(:readlink, "-f", path) == current
        # in-use exits 0 when no process uses the path, 1 when one does, 3 on an error.
        if test(fetch(:relwatch_bin, "relwatch"), "in-use", path)
          execute :rm, "-rf", path
        else
          warn "relwatch: keeping #{path} on #{host}: a running process still uses it"
        end
      end
    end
  end
end

after "deploy:published", "relwatch:wait"

Rake::Task["deploy:cleanup"].clear_actions
namespace :deploy do
  task :cleanup do
    invoke "relwatch:cleanup"
  end
end
