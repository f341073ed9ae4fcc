# relwatch %post (cargo-generate-rpm: post_install_script). $1 is 1 on a first install,
# 2 or more on an upgrade. The semantics of %systemd_post and %systemd_postun_with_restart,
# written as plain shell: enable and start relwatch.timer on a first install; on an upgrade,
# restart only what was running. relwatch-agent.service is shipped disabled (it is the
# alternative to the timer). On distributions whose presets disable new units by default,
# disable it again with `systemctl disable --now relwatch.timer`.

# node_exporter's textfile directory, where relwatch.service writes relwatch.prom.
# relwatch runs as root without CAP_DAC_OVERRIDE: the directory must be owned by root.
if [ ! -d /var/lib/prometheus/node-exporter ]; then
    mkdir -p /var/lib/prometheus/node-exporter
    chmod 0755 /var/lib/prometheus /var/lib/prometheus/node-exporter
fi

if [ "$1" -eq 1 ]; then
    # Works without a running systemd too (an image build): it only creates the symlinks.
    systemctl --no-reload enable relwatch.timer >/dev/null 2>&1 || :
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl start relwatch.timer >/dev/null 2>&1 || :
    else
        systemctl try-restart relwatch.timer relwatch-agent.service >/dev/null 2>&1 || :
    fi
fi
