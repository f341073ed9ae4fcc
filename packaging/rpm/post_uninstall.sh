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
    for dir in /var/lib/prometheus/node-exporter /var/lib/prometheus; do
        if [ -d "${dir}" ] && ! rpm -qf "${dir}" >/dev/null 2>&1; then
            rmdir "${dir}" 2>/dev/null || :
        fi
    done
fi
