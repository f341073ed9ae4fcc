//! The packages: every file Cargo.toml's [package.metadata.deb] and packaging/rpm/relwatch.spec
//! name exists in the repository, or is made by the release build or packaging/build-assets; the
//! maintainer scripts of the .deb exist and are shell scripts dpkg runs; every link in the
//! docs they install leads to a file they install; the sudo rule both ship is valid sudoers
//! syntax (`visudo -cf`) and allows only `in-use` and `wait`; every shipped Prometheus alert
//! fires and resolves (`promtool test rules`); the man page keeps its sections and examples
//! through `man`. Installing the .deb is tests/package_install.rs.

mod util;

use std::path::Path;

fn manifest() -> (std::path::PathBuf, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
    let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    (dir, text)
}

/// The files the .rpm installs, from packaging/rpm/relwatch.spec's %install table (one
/// `MODE SOURCE DESTINATION` line each, between `<<'FILES'` and `FILES`): (source, destination).
fn spec_rows() -> Vec<(String, String)> {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpm/relwatch.spec");
    let text = std::fs::read_to_string(&spec).unwrap();
    let table = text
        .split("<<'FILES'\n")
        .nth(1)
        .expect("the spec's file table");
    let table = &table[..table
        .find("\nFILES\n")
        .expect("the end of the spec's file table")];
    table
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(fields.len(), 3, "MODE SOURCE DESTINATION: {line}");
            (fields[1].to_string(), fields[2].to_string())
        })
        .collect()
}

/// Source paths of the assets: the first string of each `[...]` row of the deb metadata, then
/// the sources of the spec's file table (rpm).
fn asset_sources(text: &str) -> Vec<String> {
    asset_pairs(text).into_iter().map(|(src, _)| src).collect()
}

/// (source, installed path) of every asset, deb rows first, then rpm; a deb destination
/// ending in `/` is a directory that gets the source's file name.
fn asset_pairs(text: &str) -> Vec<(String, String)> {
    let mut out = deb_pairs(text);
    out.extend(
        spec_rows()
            .into_iter()
            .map(|(src, dest)| (src, dest.replace("/usr/lib/systemd", "/lib/systemd"))),
    );
    out
}

/// (source, installed path) of every asset of the deb metadata.
fn deb_pairs(text: &str) -> Vec<(String, String)> {
    let meta = &text[text.find("[package.metadata.deb]").expect("deb metadata")..];
    let quoted = |line: &str| -> Vec<String> {
        line.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    };
    let mut out = Vec::new();
    for line in meta.lines().map(str::trim) {
        if line.starts_with("[\"") {
            let q = quoted(line);
            let mut dest = format!("/{}", q[1]);
            if dest.ends_with('/') {
                dest.push_str(q[0].rsplit('/').next().unwrap());
            }
            out.push((q[0].clone(), dest));
        }
    }
    out
}

/// Every relative link in a Markdown file the packages install (README.md, docs/*.md) leads to
/// a file the same package installs, where the link says: the README in /usr/share/doc/relwatch/
/// is the one packaging/build-assets makes, whose `docs/X.md` links read `X.md`, since the docs
/// are installed beside it.
#[test]
fn every_link_in_the_installed_docs_leads_to_an_installed_file() {
    let (dir, text) = manifest();
    run_ok(
        "sh",
        &["packaging/build-assets", env!("CARGO_BIN_EXE_relwatch")],
        Some(&dir),
    );
    let pairs = asset_pairs(&text);
    let deb_rows = deb_pairs(&text).len();
    let mut checked = 0;
    for (name, assets) in [("deb", &pairs[..deb_rows]), ("rpm", &pairs[deb_rows..])] {
        let installed: Vec<&str> = assets.iter().map(|(_, d)| d.as_str()).collect();
        for (src, dest) in assets.iter().filter(|(_, d)| d.ends_with(".md")) {
            let body =
                std::fs::read_to_string(dir.join(src)).unwrap_or_else(|e| panic!("{src}: {e}"));
            let here = Path::new(dest).parent().unwrap();
            for link in body.split("](").skip(1).filter_map(|l| l.split(')').next()) {
                let target = link.split('#').next().unwrap();
                if target.is_empty() || target.contains("://") {
                    continue;
                }
                let path = here.join(target);
                assert!(
                    installed.contains(&path.to_str().unwrap()),
                    "{name}: {dest} links {link}, but the package does not install {}",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 20, "links checked: {checked}");
}

#[test]
fn every_packaged_file_exists_or_is_built() {
    let (dir, text) = manifest();
    let sources = asset_sources(&text);
    assert!(
        sources.len() >= 30,
        "deb and rpm assets were read: {sources:?}"
    );
    let build_assets = std::fs::read_to_string(dir.join("packaging/build-assets")).unwrap();
    for src in &sources {
        if src == "target/release/relwatch" {
            continue; // the release build
        }
        if let Some(name) = src.strip_prefix("target/assets/") {
            assert!(
                build_assets.contains(&format!("\"${{tmp}}/{name}\"")),
                "{src}: packaging/build-assets does not make it"
            );
            continue;
        }
        assert!(
            dir.join(src).is_file(),
            "{src} is packaged but does not exist"
        );
    }
    for script in [
        "packaging/deb/postinst",
        "packaging/deb/prerm",
        "packaging/deb/postrm",
    ] {
        let body =
            std::fs::read_to_string(dir.join(script)).unwrap_or_else(|e| panic!("{script}: {e}"));
        assert!(body.starts_with('#'), "{script} is a shell script");
        if script.ends_with("postinst") {
            assert!(
                body.contains("enable") && body.contains("relwatch.timer"),
                "{script} enables the timer"
            );
        }
        // cargo-deb takes every file of the directory it is given, under its own name.
        assert!(
            text.contains("maintainer-scripts = \"packaging/deb/\""),
            "the deb metadata does not take its maintainer scripts from packaging/deb/"
        );
    }
    // The .rpm's scriptlets are in its spec (tests/rpm_package.rs reads them from the .rpm).
    // dpkg runs only maintainer scripts with these names: a misspelt one would never run.
    let known = [
        "preinst",
        "postinst",
        "prerm",
        "postrm",
        "triggers",
        "conffiles",
        "templates",
        "config",
    ];
    for entry in std::fs::read_dir(dir.join("packaging/deb")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            known.contains(&name.as_str()),
            "packaging/deb/{name} is no maintainer script dpkg runs"
        );
    }
}

#[test]
fn build_assets_makes_the_man_page_and_completions() {
    let (dir, _) = manifest();
    let out = tempfile::tempdir().unwrap();
    // Run it against the test binary into a scratch copy of target/assets' location.
    let status = std::process::Command::new("sh")
        .arg(dir.join("packaging/build-assets"))
        .arg(env!("CARGO_BIN_EXE_relwatch"))
        .env("TMPDIR", out.path())
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    for f in [
        "relwatch",
        "relwatch.1.gz",
        "relwatch-deploy.1.gz",
        "README.md",
        "relwatch.bash",
        "_relwatch",
        "relwatch.fish",
    ] {
        let p = dir.join("target/assets").join(f);
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 0),
            "{} missing or empty",
            p.display()
        );
    }
}

/// The sudo rule for deploy users ships in both packages where the recipes and the messages
/// say (`/usr/share/relwatch/sudoers`), passes `visudo -cf`, and allows `relwatch in-use` and
/// `relwatch wait` only, never `wait` with a config file or discovery (a file read as root could
/// be quoted back in an error).
#[test]
fn the_sudo_rule_is_shipped_and_valid() {
    let (dir, text) = manifest();
    let sources = asset_sources(&text);
    assert_eq!(
        sources
            .iter()
            .filter(|s| *s == "packaging/sudoers/relwatch")
            .count(),
        2,
        "deb and rpm ship it: {sources:?}"
    );
    assert!(
        text.contains("\"usr/share/relwatch/sudoers\""),
        "deb destination"
    );
    assert!(
        spec_rows().contains(&(
            "packaging/sudoers/relwatch".into(),
            "/usr/share/relwatch/sudoers".into()
        )),
        "rpm destination"
    );
    let rule = dir.join("packaging/sudoers/relwatch");
    let body = std::fs::read_to_string(&rule).expect("read the sudo rule");
    let commands: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.contains("/usr/bin/relwatch") && !l.starts_with('#'))
        .collect();
    for line in &commands {
        let allowed = line.trim_start_matches("Cmnd_Alias RELWATCH_READ = ");
        assert!(
            allowed.starts_with("/usr/bin/relwatch in-use ")
                || allowed.starts_with("/usr/bin/relwatch wait ")
                || allowed.starts_with("!/usr/bin/relwatch wait "),
            "only in-use and wait: {line}"
        );
    }
    for denied in ["*--config*", "-c*", "* -c*", "*--discover*"] {
        assert!(
            commands
                .iter()
                .any(|l| l.contains(&format!("!/usr/bin/relwatch wait {denied}"))),
            "wait {denied} is refused: {commands:?}"
        );
    }
    let visudo = Path::new("/usr/sbin/visudo");
    if !visudo.exists() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "visudo is not installed: apt-get install sudo (scripts/test-deps does)"
        );
        eprintln!("not checked with visudo: apt-get install sudo");
        return;
    }
    let out = std::process::Command::new(visudo)
        .arg("-cf")
        .arg(&rule)
        .output()
        .expect("run visudo");
    assert!(out.status.success(), "{out:?}");
}

/// `promtool test rules` on packaging/prometheus/relwatch.rules.test.yml: every shipped alert
/// stays quiet before its `for:`, fires with its labels and annotations after it, and resolves
/// when the series a failing host writes clears. Under CI a missing promtool fails the test.
#[test]
fn every_shipped_alert_fires_and_resolves() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/prometheus");
    let rules = std::fs::read_to_string(dir.join("relwatch.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("relwatch.rules.test.yml")).unwrap();
    // Every alert of the rules has a test of its own.
    for alert in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("- name: {alert}\n")),
            "relwatch.rules.test.yml has no test for {alert}"
        );
    }
    let out = match std::process::Command::new("promtool")
        .args(["test", "rules", "relwatch.rules.test.yml"])
        .current_dir(&dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v.is_empty() || v == "false"),
                "promtool cannot run ({e}): apt-get install prometheus (scripts/test-deps does)"
            );
            eprintln!("skipped: promtool cannot run ({e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "promtool test rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The man page as `man` shows it: the sections a reader looks for, in order (EXIT STATUS,
/// ENVIRONMENT, FILES; no clap "EXTRA"), no reference to a page that does not ship
/// (`relwatch-check(1)`), and every example of every `--help` on a line of its own, as written:
/// groff fills plain text, and a filled example is two commands run together.
#[test]
fn the_man_page_keeps_its_examples_and_sections() {
    let page = run_ok(env!("CARGO_BIN_EXE_relwatch"), &["man"], None);
    let shown = match std::process::Command::new("man")
        .args(["-l", "-"])
        .env("MANWIDTH", "80")
        .env("MAN_KEEP_FORMATTING", "")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(page.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "man -l -: {out:?}");
            assert!(
                out.stderr.is_empty(),
                "groff warned: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        }
        Err(e) => {
            return util::skip(&format!(
                "man cannot run ({e}): apt-get install man-db groff-base"
            ));
        }
    };
    let headings: Vec<&str> = shown
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_uppercase()))
        .collect();
    let mut at = 0;
    for want in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "COMMANDS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
        "RELWATCH CHECK",
    ] {
        match headings[at..].iter().position(|h| *h == want) {
            Some(i) => at += i + 1,
            None => panic!(
                "no section {want} after {:?}: {headings:?}",
                headings.get(at.wrapping_sub(1))
            ),
        }
    }
    assert!(!shown.contains("EXTRA"), "clap's EXTRA section is back");
    assert!(
        !shown.contains("relwatch-check(1)"),
        "refers to a page that does not ship"
    );
    assert!(shown.contains("NO_COLOR"), "ENVIRONMENT names NO_COLOR");
    let lines: Vec<&str> = shown.lines().map(str::trim).collect();
    let mut examples = 0;
    // The commands as the page's COMMANDS section lists them ("relwatch check", ...).
    let section =
        &shown[shown.find("\nCOMMANDS\n").unwrap()..shown.find("\nEXIT STATUS\n").unwrap()];
    let subs: Vec<&str> = section
        .lines()
        .filter_map(|l| l.trim().strip_prefix("relwatch "))
        .filter(|rest| !rest.contains(' '))
        .collect();
    assert!(subs.len() >= 8, "COMMANDS lists the commands: {subs:?}");
    for sub in subs {
        let help = run_ok(env!("CARGO_BIN_EXE_relwatch"), &[sub, "--help"], None);
        let Some((_, after)) = help.split_once("\nExample") else {
            continue;
        };
        for example in after.lines().skip(1).take_while(|l| l.starts_with("  ")) {
            examples += 1;
            assert!(lines.contains(&example.trim()), "relwatch {sub} --help's example {example:?} is not a line of its own in the man page:\n{shown}");
        }
    }
    assert!(examples >= 15, "found the examples of --help: {examples}");
}

/// Runs `program args`, asserts it succeeded, returns its stdout.
fn run_ok(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}
