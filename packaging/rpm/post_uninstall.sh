# relwatch %postun (cargo-generate-rpm: post_uninstall_script). $1 is 0 when the package is
# erased, 1 or more on an upgrade (post_install.sh restarts the units then).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
    # A removed relwatch must not look like one that stopped writing.
    rm -f /var/lib/prometheus/node-exporter/relwatch.prom
    # What the .deb's purge removes too (tested there, tests/package_install.rs): the timer's
    # stamp (Persistent=yes), and the textfile directories %post made when no package owned
    # them, when empty and still owned by none.
    rm -f /var/lib/systemd/timers/stamp-relwatch.timer
    # cargo-generate-rpm cannot make an rpm own a directory, so rpm leaves behind the ones it
    # made for this package's files: relwatch's own, and those of packages it does not require
    # (shell completions, systemd) when no package owns them. Deepest first; a directory that
    # still holds a file stays. tests/rpm_package.rs checks that every one is named here.
    for dir in /usr/share/doc/relwatch/examples/ansible /usr/share/doc/relwatch/examples/capistrano \
        /usr/share/doc/relwatch/examples/deployer /usr/share/doc/relwatch/examples \
        /usr/share/doc/relwatch /usr/share/relwatch; do
        rmdir "${dir}" 2>/dev/null || :
    done
    for dir in /var/lib/prometheus/node-exporter /var/lib/prometheus \
        /usr/share/bash-completion/completions /usr/share/bash-completion \
        /usr/share/zsh/site-functions /usr/share/zsh \
        /usr/share/fish/vendor_completions.d /usr/share/fish \
        /usr/lib/systemd/system-preset /usr/lib/systemd/system /usr/lib/systemd; do
        if [ -d "${dir}" ] && ! rpm -qf "${dir}" >/dev/null 2>&1; then
            rmdir "${dir}" 2>/dev/null || :
        fi
    done
fi
