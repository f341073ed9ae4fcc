# relwatch %postun (cargo-generate-rpm: post_uninstall_script). $1 is 0 when the package is
# erased, 1 or more on an upgrade (post_install.sh restarts the units then).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 0 ]; then
    # A removed relwatch must not look like one that stopped writing.
    rm -f /var/lib/prometheus/node-exporter/relwatch.prom
fi
