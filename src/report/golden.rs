//! Golden outputs of every renderer on the hostile fixture ([`crate::testkit::Fixture`]), and
//! the remedy each kind of owner gets. They hold the bytes users and scripts see: a change that
//! alters them is a change of behaviour, to be reviewed with `RELWATCH_BLESS=1 cargo test
//! report::golden` and the diff.

use super::{json, text, tree};
use crate::owner::{Owner, Supervisor};
use crate::testkit::{bless_or_compare, owner, retitle, system_unit as unit, Fixture};

/// Every renderer on one fixture, each under a heading.
fn all_outputs(fx: &Fixture) -> String {
    let r = fx.report();
    let mut out = String::new();
    out.push_str("== text\n");
    out.push_str(&text::render(&r, text::Style { color: false }));
    out.push_str("== text, color\n");
    out.push_str(&text::render(&r, text::Style { color: true }));
    out.push_str("== json\n");
    out.push_str(&json::render(&r, true).unwrap());
    out.push_str("\n== ps\n");
    out.push_str(&tree::render(&r));
    out
}

#[test]
fn text_json_and_ps_with_hostile_names() {
    let mut out = all_outputs(&Fixture::new());
    out.push_str("== empty\n");
    out.push_str(&all_outputs(&Fixture::empty()));
    bless_or_compare(
        "outputs.txt",
        include_str!("../../tests/golden/outputs.txt"),
        &out,
    );
}

/// Owners of the fixture's master (100), its old workers (200, 201) and its current worker
/// (300), each set under a title: first the process supervisors.
fn supervisor_owners() -> Vec<(&'static str, Vec<(i32, Owner)>)> {
    let supervisord = |program: Option<&str>| Supervisor::Supervisord {
        pid: 1,
        program: program.map(Into::into),
    };
    let pm2 = |name: Option<&str>, id: Option<&str>| Supervisor::Pm2 {
        god: 1,
        name: name.map(Into::into),
        id: id.map(Into::into),
        exec_path: None,
    };
    let s6 = |pid, service: &str| Supervisor::S6 {
        pid,
        service: service.into(),
    };
    vec![
        ("no owner read", vec![]),
        (
            "supervisord program",
            vec![
                (
                    100,
                    owner(
                        supervisord(Some("queue:queue_00")),
                        Some("supervisor.service"),
                    ),
                ),
                (200, owner(supervisord(None), None)),
            ],
        ),
        (
            "pm2",
            vec![
                (100, owner(pm2(Some("api; rm -rf /"), Some("0")), None)),
                (200, owner(pm2(None, None), None)),
            ],
        ),
        (
            "runit and s6",
            vec![
                (
                    100,
                    owner(
                        Supervisor::Runit {
                            pid: 1,
                            service: "queue\x1b[2J".into(),
                        },
                        None,
                    ),
                ),
                (200, owner(s6(1, "worker"), None)),
                (201, owner(s6(4242, "beat x"), None)),
            ],
        ),
    ]
}

/// Owners as [`supervisor_owners`], then systemd units, sessions and none.
fn systemd_owners() -> Vec<(&'static str, Vec<(i32, Owner)>)> {
    let systemd = |name, user| Supervisor::Systemd {
        unit: unit(name, user),
    };
    let sub = r"app@srv-shop\x2dnew.service";
    vec![
        (
            "systemd",
            vec![
                (100, owner(systemd(sub, None), Some(sub))),
                (200, owner(systemd("worker.service", Some(0)), None)),
                (201, owner(systemd("beat.service", Some(4_242_424)), None)),
            ],
        ),
        (
            "session and none",
            vec![
                (
                    100,
                    owner(
                        Supervisor::Session {
                            unit: unit("session-4.scope", None),
                        },
                        Some("session-4.scope"),
                    ),
                ),
                (200, owner(Supervisor::None, None)),
                (300, owner(Supervisor::None, Some("cron.service"))),
            ],
        ),
        (
            "a left-over of KillMode=process, and a lost supervisord child",
            vec![
                (
                    100,
                    owner(systemd("queue.service", None), Some("queue.service")),
                ),
                (
                    300,
                    owner(systemd("queue.service", None), Some("queue.service")),
                ),
                (
                    200,
                    Owner {
                        supervisor_enabled: true,
                        ..owner(Supervisor::None, Some("cron.service"))
                    },
                ),
            ],
        ),
    ]
}

/// One line of findings for each set of owners: message, owner and remedy, as the JSON gives
/// them.
#[test]
fn remedies_by_owner() {
    let mut out = String::new();
    for (name, owners) in supervisor_owners().into_iter().chain(systemd_owners()) {
        out.push_str(&format!("== {name}\n"));
        out.push_str(&findings_lines(&Fixture::with_owners(owners)));
    }
    // A supervisor on an old release hands its directory to what it restarts; supervisord
    // and the PM2 God daemon themselves on an old or deleted release.
    let supervisord = "/usr/bin/supervisord";
    let god = "PM2 v5.3.0: God Daemon (/home/u/.pm2)";
    let below = |supervisor| vec![(100, owner(supervisor, None))];
    let program = Some("queue".to_string());
    for (name, fx) in [
        (
            "supervisord on an old release above the master",
            Fixture::with(
                below(Supervisor::Supervisord {
                    pid: 200,
                    program: program.clone(),
                }),
                retitle(200, supervisord),
            ),
        ),
        (
            "pm2 on an old release above the master",
            Fixture::with(
                below(Supervisor::Pm2 {
                    god: 200,
                    name: program.map(Into::into),
                    id: None,
                    exec_path: None,
                }),
                retitle(200, god),
            ),
        ),
        (
            "supervisord itself on a deleted release",
            Fixture::with(vec![], retitle(100, supervisord)),
        ),
        (
            "the pm2 God daemon itself on a deleted release",
            Fixture::with(vec![], retitle(100, god)),
        ),
    ] {
        out.push_str(&format!("== {name}\n"));
        out.push_str(&findings_lines(&fx));
    }
    bless_or_compare(
        "remedies.txt",
        include_str!("../../tests/golden/remedies.txt"),
        &out,
    );
}

fn findings_lines(fx: &Fixture) -> String {
    let doc: serde_json::Value =
        serde_json::from_str(&json::render(&fx.report(), false).unwrap()).unwrap();
    let mut out = String::new();
    for f in doc["findings"].as_array().unwrap() {
        out.push_str(&format!(
            "{} {} {}\n  message: {}\n  owner: {}\n  remedy: {}\n",
            f["kind"], f["app"], f["pids"], f["message"], f["owner"], f["remedy"]
        ));
    }
    out
}
