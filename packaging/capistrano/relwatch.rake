# relwatch tasks for Capistrano 3. Put this file in lib/capistrano/tasks/.
#
# After deploy:published it waits until every process runs the new release (relwatch wait), and
# it replaces deploy:cleanup with one that skips, and says so, every old release a running
# process still uses, or that relwatch cannot tell is unused (relwatch in-use). relwatch must be
# installed on the hosts.
#
# relwatch sees every process only as root. As the deploy user these tasks run
# `sudo -n relwatch ...` when the sudo rule /usr/share/relwatch/sudoers is installed (see its
# header), and plain `relwatch ...` otherwise, which answers "cannot tell" (exit 3) over
# processes it may not read: the wait then fails the deploy, and the cleanup keeps every old
# release, saying why.
#
#   set :relwatch_bin, "relwatch"
#   set :relwatch_timeout, "5m"
#   set :relwatch_restart, false   # true: restart what still runs an old or deleted release
#                                  # through its supervisor first (relwatch wait --restart,
#                                  # docs/RESTART.md); needs root or a sudo rule for exactly
#                                  # that command: the shipped rule does not allow it

require "shellwords"

module RelwatchTasks
  BLIND = "relwatch could not see every process (install the sudo rule " \
          "/usr/share/relwatch/sudoers, see its header, or deploy as root)".freeze

  # The command line that runs relwatch (`bin`) with `args`: through sudo when the host's sudo
  # rule allows exactly that command, else as the deploy user.
  def self.command(backend, bin, args)
    bin = bin.shellescape
    line = args.map { |a| a.to_s.shellescape }.join(" ")
    allowed = backend.test("[ \"$(id -u)\" != 0 ] && command -v sudo >/dev/null && " \
                           "sudo -n -l #{bin} #{line} >/dev/null 2>&1")
    "#{allowed ? 'sudo -n ' : ''}#{bin} #{line}"
  end

  # Run relwatch (`bin`) with `args` on `backend` and return [exit status, output]; never
  # raises on a non-zero status.
  def self.run(backend, bin, args)
    out = backend.capture("#{command(backend, bin, args)} 2>&1; echo \"relwatch-exit=$?\"")
    lines = out.lines.map(&:chomp)
    status = lines.pop.to_s.delete_prefix("relwatch-exit=").to_i
    [status, lines.join("\n")]
  end
end

namespace :relwatch do
  desc "Wait until every process runs the new release"
  task :wait do
    on release_roles(fetch(:relwatch_roles, :all)) do |host|
      status, out = RelwatchTasks.run(self, fetch(:relwatch_bin, "relwatch"), [:wait, deploy_to, "--timeout", fetch(:relwatch_timeout, "5m")] + (fetch(:relwatch_restart, false) ? ["--restart"] : []))
      info out
      # 1 (timeout), 2 (a deleted release, a broken current link) and 3 (cannot tell) fail the deploy.
      if status == 3
        raise "relwatch on #{host}: cannot tell whether every process runs the new release: #{RelwatchTasks::BLIND}"
      elsif status != 0
        raise "relwatch wait on #{host} failed with status #{status}"
      end
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
        # in-use exits 0 when no process uses the path, 1 when one does, 3 when it cannot tell.
        status, out = RelwatchTasks.run(self, fetch(:relwatch_bin, "relwatch"), ["in-use", path])
        case status
        when 0
          execute :rm, "-rf", path
        when 1
          warn "relwatch: keeping #{path} on #{host}: a running process still uses it"
        when 3
          warn "relwatch: keeping #{path} on #{host}: cannot tell whether a process uses it: #{RelwatchTasks::BLIND}\n#{out}"
        else
          warn "relwatch: keeping #{path} on #{host}: relwatch in-use failed with status #{status}\n#{out}"
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
