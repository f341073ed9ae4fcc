# relwatch %post (cargo-generate-rpm: post_install_script). $1 is 1 on a first install,
# 2 or more on an upgrade. %systemd_post and %systemd_postun_with_restart, as plain shell:
# on a first install the units follow the systemd presets (the package's own,
# /usr/lib/systemd/system-preset/50-relwatch.preset, enables relwatch.timer; an admin's
# preset in /etc/systemd/system-preset/ overrides it), and an enabled timer starts at once;
# on an upgrade, only what was running restarts. relwatch-agent.service is preset disabled
# (it is the alternative to the timer).

# node_exporter's textfile directory, where relwatch.service writes relwatch.prom.
# relwatch runs as root without CAP_DAC_OVERRIDE: the directory must be owned by root.
if [ ! -d /var/lib/prometheus/node-exporter ]; then
    mkdir -p /var/lib/prometheus/node-exporter
    chmod 0755 /var/lib/prometheus /var/lib/prometheus/node-exporter
fi

if [ "$1" -eq 1 ]; then
    # Works without a running systemd too (an image build): it only creates the symlinks.
    systemctl --no-reload preset relwatch.timer relwatch.service relwatch-agent.service >/dev/null 2>&1 || :
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        if systemctl --quiet is-enabled relwatch.timer 2>/dev/null; then
            systemctl start relwatch.timer >/dev/null 2>&1 || :
        fi
    else
        systemctl try-restart relwatch.timer relwatch-agent.service >/dev/null 2>&1 || :
    fi
fi
