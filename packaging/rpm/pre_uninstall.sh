# relwatch %preun (cargo-generate-rpm: pre_uninstall_script). $1 is 0 when the package is
# erased, 1 or more on an upgrade. As %systemd_preun: on erase, disable and stop the units.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now relwatch.timer relwatch.service relwatch-agent.service >/dev/null 2>&1 || :
    else
        systemctl --no-reload disable relwatch.timer relwatch.service relwatch-agent.service >/dev/null 2>&1 || :
    fi
fi
