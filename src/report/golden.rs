//! Golden outputs of every renderer on the hostile fixture (tests/golden/fixture.rs), and the
//! remedy each kind of owner gets. They hold the bytes users and scripts see: a change that
//! alters them is a change of behaviour, to be reviewed with `RELWATCH_BLESS=1 cargo test
//! report::golden` and the diff.

use super::{json, text, tree};
use crate::owner::unit::UnitPath;
use crate::owner::{Owner, Supervisor};

include!("../../tests/golden/fixture.rs");

fn owner(supervisor: Supervisor, unit: Option<&str>) -> Owner {
    Owner {
        supervisor,
        unit: unit.map(|u| UnitPath {
            unit: u.into(),
            user: None,
        }),
        supervisor_enabled: false,
    }
}

fn unit(name: &str, user: Option<u32>) -> UnitPath {
    UnitPath {
        unit: name.into(),
        user,
    }
}

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

/// The owners of the fixture's master (100), its old worker (200) and its current worker (300),
/// one line of findings each way: message, owner and remedy, as the JSON gives them.
#[test]
fn remedies_by_owner() {
    let variants: Vec<(&str, Vec<(i32, Owner)>)> = vec![
        ("no owner read", vec![]),
        (
            "supervisord program",
            vec![
                (
                    100,
                    owner(
                        Supervisor::Supervisord {
                            pid: 1,
                            program: Some("queue:queue_00".into()),
                        },
                        Some("supervisor.service"),
                    ),
                ),
                (
                    200,
                    owner(
                        Supervisor::Supervisord {
                            pid: 1,
                            program: None,
                        },
                        None,
                    ),
                ),
            ],
        ),
        (
            "pm2",
            vec![
                (
                    100,
                    owner(
                        Supervisor::Pm2 {
                            god: 1,
                            name: Some("api; rm -rf /".into()),
                            id: Some("0".into()),
                        },
                        None,
                    ),
                ),
                (
                    200,
                    owner(
                        Supervisor::Pm2 {
                            god: 1,
                            name: None,
                            id: None,
                        },
                        None,
                    ),
                ),
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
                (
                    200,
                    owner(
                        Supervisor::S6 {
                            pid: 1,
                            service: "worker".into(),
                        },
                        None,
                    ),
                ),
                (
                    201,
                    owner(
                        Supervisor::S6 {
                            pid: 4242,
                            service: "beat x".into(),
                        },
                        None,
                    ),
                ),
            ],
        ),
        (
            "systemd",
            vec![
                (
                    100,
                    owner(
                        Supervisor::Systemd {
                            unit: unit(r"app@srv-shop\x2dnew.service", None),
                        },
                        Some(r"app@srv-shop\x2dnew.service"),
                    ),
                ),
                (
                    200,
                    owner(
                        Supervisor::Systemd {
                            unit: unit("worker.service", Some(0)),
                        },
                        None,
                    ),
                ),
                (
                    201,
                    owner(
                        Supervisor::Systemd {
                            unit: unit("beat.service", Some(4_242_424)),
                        },
                        None,
                    ),
                ),
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
                    owner(
                        Supervisor::Systemd {
                            unit: unit("queue.service", None),
                        },
                        Some("queue.service"),
                    ),
                ),
                (
                    300,
                    owner(
                        Supervisor::Systemd {
                            unit: unit("queue.service", None),
                        },
                        Some("queue.service"),
                    ),
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
    ];
    let mut out = String::new();
    for (name, owners) in variants {
        out.push_str(&format!("== {name}\n"));
        let fx = Fixture::with_owners(owners);
        out.push_str(&findings_lines(&fx));
    }
    // A supervisor on an old release hands its directory to what it restarts; supervisord
    // and the PM2 God daemon themselves on an old or deleted release.
    let on_old = |pid: i32, title: &str| {
        let title = title.to_string();
        move |procs: &mut Vec<crate::snapshot::Process>| {
            if let Some(p) = procs.iter_mut().find(|p| p.pid == pid) {
                p.cmdline = [title.as_str()].into_iter().collect();
            }
        }
    };
    let below = |sup: Supervisor| vec![(100, owner(sup, None))];
    for (name, fx) in [
        (
            "supervisord on an old release above the master",
            Fixture::with(
                below(Supervisor::Supervisord {
                    pid: 200,
                    program: Some("queue".into()),
                }),
                on_old(200, "/usr/bin/supervisord"),
            ),
        ),
        (
            "pm2 on an old release above the master",
            Fixture::with(
                below(Supervisor::Pm2 {
                    god: 200,
                    name: Some("queue".into()),
                    id: None,
                }),
                on_old(200, "PM2 v5.3.0: God Daemon (/home/u/.pm2)"),
            ),
        ),
        (
            "supervisord itself on a deleted release",
            Fixture::with(vec![], on_old(100, "/usr/bin/supervisord")),
        ),
        (
            "the pm2 God daemon itself on a deleted release",
            Fixture::with(vec![], on_old(100, "PM2 v5.3.0: God Daemon (/home/u/.pm2)")),
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
