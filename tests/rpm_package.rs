//! The .rpm as packaging/build-rpm builds it (rpmbuild, packaging/rpm/relwatch.spec) from the
//! binary under test (packaging/build-assets writes the stripped copy it ships; no release
//! build), read back with Debian's `rpm`: the binary is stripped; every directory it installs
//! into is the base system's or one it owns; its summary is one line, its description several
//! (the .deb's), its URL is Cargo.toml's; rpmlint finds nothing but what
//! packaging/rpm/rpmlint.toml excuses; it ships the systemd preset and its scriptlets apply
//! presets (never a blind enable) and pass `sh -n` and shellcheck; its files are the .deb's,
//! where the two formats agree; and installed with `rpm -i` in a container booted with a real
//! systemd, the timer is enabled and active at once, an admin's preset that disables it is
//! honoured, and `rpm -e` leaves nothing behind (rpm removes the directories it owns).
//!
//! Needs root, cargo-deb (`cargo install cargo-deb --locked`), and the Debian packages rpm
//! (rpmbuild), rpm2cpio, cpio, rpmlint, binutils, shellcheck, systemd-container and dbus
//! (scripts/test-deps installs them all).

mod util;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use util::skip;
use util::systemd::Container;

/// Where the .rpm is built and unpacked (under the cargo target directory).
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("rpm-package")
}

/// Runs `cmd` in the project directory; its stdout, or a panic with its output unless it
/// exits 0.
fn succeed(cmd: &mut Command) -> String {
    match cmd.current_dir(env!("CARGO_MANIFEST_DIR")).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => panic!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("{cmd:?} cannot run: {e}"),
    }
}

/// Whether `program ARGS` runs and exits 0.
fn runs(program: &str, arg: &[&str]) -> bool {
    Command::new(program)
        .args(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The .rpm of the binary under test, built once per run of this file by packaging/build-rpm
/// (packaging/build-assets, which writes the stripped copy the .rpm ships, then rpmbuild) and
/// copied here; its payload is unpacked into `root/` beside it (`rpm2cpio | cpio`). `Err` says
/// why it could not be built.
fn rpm() -> &'static Result<PathBuf, String> {
    static RPM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RPM.get_or_init(|| {
        for tool in ["rpm", "rpmbuild", "rpm2cpio", "cpio", "readelf"] {
            if !runs("sh", &["-c", "command -v \"$1\"", "sh", tool]) {
                return Err(format!(
                    "{tool} is not installed: apt-get install rpm rpm2cpio cpio binutils"
                ));
            }
        }
        let out = out_dir();
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(out.join("root")).expect("create the package directory");
        let bin = env!("CARGO_BIN_EXE_relwatch");
        let built = succeed(Command::new("sh").args(["packaging/build-rpm", bin]));
        // Under its own name (rpmlint checks that it is the package's).
        let built = Path::new(built.trim_end());
        let rpm = out.join(built.file_name().expect("the .rpm's file name"));
        std::fs::copy(built, &rpm).expect("copy the .rpm packaging/build-rpm wrote");
        let script = "rpm2cpio \"$1\" | (cd \"$2\" && cpio -idm --quiet)";
        succeed(
            Command::new("sh")
                .args(["-c", script, "sh"])
                .arg(&rpm)
                .arg(out.join("root")),
        );
        Ok(rpm)
    })
}

/// The built .rpm, or `None` after [`skip`] (which fails under CI).
fn built() -> Option<&'static Path> {
    match rpm() {
        Ok(path) => Some(path),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// `rpm -qp ARGS PACKAGE`'s output.
fn query(rpm: &Path, args: &[&str]) -> String {
    succeed(Command::new("rpm").arg("-qp").args(args).arg(rpm))
}

/// Every entry of the package: (path, is a directory), from `rpm -qlp --dump`, whose fifth
/// field is the octal mode.
fn entries(rpm: &Path) -> Vec<(String, bool)> {
    query(rpm, &["-l", "--dump"])
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            assert!(fields.len() >= 11, "an rpm --dump line: {line}");
            let mode = u32::from_str_radix(fields[4], 8).expect("an octal mode");
            (fields[0].to_string(), mode & 0o170000 == 0o040000)
        })
        .collect()
}

/// The sections of `readelf -S` of `path`, one name a line.
fn elf_sections(path: &Path) -> String {
    succeed(Command::new("readelf").args(["-S", "-W"]).arg(path))
}

/// The binary the .rpm ships has no symbol table and no debug sections (packaging/build-assets
/// strips it; the spec makes no debuginfo package). The binary under test has a symbol table, so
/// the check sees one where there is one.
#[test]
fn the_binary_is_stripped() {
    let Some(_) = built() else { return };
    let under_test = elf_sections(Path::new(env!("CARGO_BIN_EXE_relwatch")));
    assert!(under_test.contains(" .symtab "), "{under_test}");
    let shipped = out_dir().join("root/usr/bin/relwatch");
    let sections = elf_sections(&shipped);
    for section in [" .symtab ", " .debug_info ", " .debug_line "] {
        assert!(
            !sections.contains(section),
            "{} has a {} section:\n{sections}",
            shipped.display(),
            section.trim()
        );
    }
}

/// The directories of Fedora's and RHEL's `filesystem` package, which every system has:
/// a package puts files in them without owning them.
const FILESYSTEM: &[&str] = &[
    "/",
    "/usr",
    "/usr/bin",
    "/usr/lib",
    "/usr/share",
    "/usr/share/doc",
    "/usr/share/licenses",
    "/usr/share/man",
    "/usr/share/man/man1",
];

/// relwatch's own directories, which the .rpm owns (a `%dir` line in the spec each).
const OWN_DIRS: &[&str] = &[
    "/usr/share/doc/relwatch",
    "/usr/share/doc/relwatch/examples",
    "/usr/share/doc/relwatch/examples/ansible",
    "/usr/share/doc/relwatch/examples/capistrano",
    "/usr/share/doc/relwatch/examples/deployer",
    "/usr/share/relwatch",
];

/// The directories of packages relwatch does not require (bash-completion, zsh, fish,
/// systemd), which it co-owns as Fedora's rules ask, so that rpm removes them on erase when
/// they are empty and owned by no other package.
const SHARED_DIRS: &[&str] = &[
    "/usr/lib/systemd",
    "/usr/lib/systemd/system",
    "/usr/lib/systemd/system-preset",
    "/usr/share/bash-completion",
    "/usr/share/bash-completion/completions",
    "/usr/share/fish",
    "/usr/share/fish/vendor_completions.d",
    "/usr/share/zsh",
    "/usr/share/zsh/site-functions",
];

/// Every directory the package installs into is one it owns (a directory entry, `drwxr-xr-x`
/// as `rpm -qp --qf '[%{FILEMODES:perms} %{FILENAMES}\n]'` prints it) or one of the base
/// system's, which it does not own; relwatch's own and the shared ones are all owned.
#[test]
fn it_owns_every_directory_it_installs_into() {
    let Some(rpm) = built() else { return };
    let listing = query(rpm, &["--qf", "[%{FILEMODES:perms} %{FILENAMES}\n]"]);
    let mut owned = BTreeSet::new();
    let mut paths = Vec::new();
    for line in listing.lines() {
        let (perms, path) = line.split_once(' ').expect("PERMS PATH");
        if perms.starts_with('d') {
            assert_eq!(perms, "drwxr-xr-x", "{path}");
            owned.insert(path);
        }
        paths.push(path);
    }
    assert!(paths.len() >= 30, "{listing}");
    let mut unowned = BTreeSet::new();
    for path in &paths {
        for parent in Path::new(path).ancestors().skip(1) {
            let parent = parent.to_str().expect("a UTF-8 path");
            if !FILESYSTEM.contains(&parent) && !owned.contains(parent) {
                unowned.insert(parent);
            }
        }
    }
    assert!(
        unowned.is_empty(),
        "the .rpm installs into directories it does not own: {unowned:#?}\n{listing}"
    );
    let expected: BTreeSet<&str> = OWN_DIRS.iter().chain(SHARED_DIRS).copied().collect();
    assert_eq!(owned, expected, "the directories the .rpm owns");
}

/// A value of `[package]` in Cargo.toml (`key = "..."` at the start of a line, inside
/// `section`), if set.
fn cargo_toml_value(section: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    let start = text.find(&format!("{section}\n")).expect("the section");
    let body = &text[start + section.len() + 1..];
    let body = &body[..body.find("\n[").unwrap_or(body.len())];
    body.lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
}

/// The words of the .deb's extended-description in Cargo.toml (a `"""` string whose lines end
/// in `\`).
fn deb_description_words() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .expect("read Cargo.toml");
    let start = text
        .find("extended-description = \"\"\"\\\n")
        .expect("the .deb's extended-description");
    let body = &text[start..];
    let body = &body[body.find('\n').expect("a line") + 1..];
    let body = &body[..body.find("\"\"\"").expect("the end of the description")];
    body.replace('\\', " ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The summary is the spec's, one line that ends without a full stop (rpm's rules); the
/// description is several lines of at most 79 columns, not the summary, and says what the
/// .deb's extended-description says, word for word; the URL is Cargo.toml's `homepage` (else
/// `repository`), or none while the project has neither.
#[test]
fn summary_description_and_url() {
    let Some(rpm) = built() else { return };
    let said = query(
        rpm,
        &[
            "--queryformat",
            "%{SUMMARY}\n--\n%{DESCRIPTION}\n--\n%{URL}",
        ],
    );
    let parts: Vec<&str> = said.split("\n--\n").collect();
    let [summary, description, url] = parts[..] else {
        panic!("three fields: {said:?}")
    };
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpm/relwatch.spec"),
    )
    .expect("read the spec");
    let spec_summary = spec
        .lines()
        .find_map(|l| l.strip_prefix("Summary:"))
        .map(str::trim);
    assert_eq!(Some(summary), spec_summary);
    assert!(
        !summary.contains('\n') && !summary.ends_with('.') && summary.len() <= 79,
        "one line without a full stop: {summary:?}"
    );
    let lines: Vec<&str> = description.lines().collect();
    assert!(
        lines.len() >= 3 && lines.iter().all(|l| l.len() <= 79) && description != summary,
        "several lines of at most 79 columns, not the summary: {said}"
    );
    let words: Vec<String> = description.split_whitespace().map(str::to_string).collect();
    assert_eq!(words, deb_description_words(), "the .deb's description");
    let expected = cargo_toml_value("[package]", "homepage")
        .or_else(|| cargo_toml_value("[package]", "repository"))
        .unwrap_or_else(|| "(none)".into());
    assert_eq!(url, expected, "the URL is Cargo.toml's");
}

/// rpmlint finds no error and no warning in the .rpm, beyond those
/// packaging/rpm/rpmlint.toml filters, each of which has a comment that says why.
#[test]
fn rpmlint_is_clean() {
    let Some(rpm) = built() else { return };
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/rpm/rpmlint.toml");
    let text = std::fs::read_to_string(&config).expect("read packaging/rpm/rpmlint.toml");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let filters = lines
        .iter()
        .position(|l| *l == "Filters = [")
        .expect("Filters");
    let mut reasoned = 0;
    for (i, line) in lines.iter().enumerate().skip(filters + 1) {
        if *line == "]" {
            break;
        }
        if line.starts_with('\'') {
            assert!(
                lines[i - 1].starts_with('#') || lines[i - 1].starts_with('\''),
                "{}: the filter {line} has no comment that says why",
                config.display()
            );
            reasoned += 1;
        }
    }
    assert!(reasoned > 0, "{text}");
    let run = match Command::new("rpmlint")
        .arg("-c")
        .arg(&config)
        .arg(rpm)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(run) => run,
        Err(e) => {
            return skip(&format!(
                "rpmlint cannot run ({e}): apt-get install rpmlint"
            ))
        }
    };
    let out = String::from_utf8_lossy(&run.stdout);
    let complaints: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(": E: ") || l.contains(": W: "))
        .collect();
    assert!(
        run.status.success() && complaints.is_empty() && out.contains(" 0 errors, 0 warnings"),
        "rpmlint ({}):\n{out}{}",
        run.status,
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The scriptlets of the package (as `rpm -qp --scripts` prints them), by name
/// (`postinstall`, `preuninstall`, `postuninstall`), each with its interpreter and body.
fn scriptlets(rpm: &Path) -> Vec<(String, String, String)> {
    let text = query(rpm, &["--scripts"]);
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        // `NAME scriptlet (using PROG):`, or `NAME scriptlet:` for rpm's default, /bin/sh.
        if let Some((name, rest)) = line.split_once(" scriptlet") {
            if !name.contains(' ') && rest.ends_with(':') {
                let prog = rest
                    .strip_prefix(" (using ")
                    .and_then(|p| p.strip_suffix("):"))
                    .unwrap_or("/bin/sh");
                out.push((name.to_string(), prog.to_string(), String::new()));
                continue;
            }
        }
        let last = out.last_mut().expect("a scriptlet header first");
        last.2.push_str(line);
        last.2.push('\n');
    }
    out
}

/// The preset ships and enables the timer; %post applies presets (`systemctl preset`) and
/// never enables a unit itself; %preun and %postun are there; all three run under /bin/sh and
/// pass `sh -n` and shellcheck as shipped.
#[test]
fn the_preset_ships_and_the_scriptlets_apply_presets() {
    let Some(rpm) = built() else { return };
    let preset = "/usr/lib/systemd/system-preset/50-relwatch.preset";
    let text = std::fs::read_to_string(out_dir().join("root").join(&preset[1..]))
        .expect("the .rpm ships the preset");
    let active: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(active.contains(&"enable relwatch.timer"), "{text}");
    assert!(active.contains(&"disable relwatch-agent.service"), "{text}");

    let scripts = scriptlets(rpm);
    let names: Vec<&str> = scripts.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["postinstall", "preuninstall", "postuninstall"]);
    let dir = util::tempdir();
    for (name, prog, body) in &scripts {
        assert_eq!(prog, "/bin/sh", "{name}");
        let code: Vec<&str> = body
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(
            !code
                .iter()
                .any(|l| l.contains("systemctl") && l.contains(" enable ")),
            "{name} enables a unit itself instead of applying presets:\n{body}"
        );
        if name == "postinstall" {
            assert!(
                code.iter()
                    .any(|l| l.starts_with("systemctl --no-reload preset relwatch.timer ")),
                "{name} applies the presets on a first install:\n{body}"
            );
        }
        let file = dir.path().join(name);
        std::fs::write(&file, body).expect("write the scriptlet");
        succeed(Command::new("sh").arg("-n").arg(&file));
        match Command::new("shellcheck")
            .args(["-s", "sh"])
            .arg(&file)
            .output()
        {
            Ok(run) => assert!(
                run.status.success(),
                "shellcheck {name}:\n{}",
                String::from_utf8_lossy(&run.stdout)
            ),
            Err(e) => skip(&format!(
                "shellcheck cannot run ({e}): apt-get install shellcheck"
            )),
        }
    }
}

/// The files of the .deb of the binary under test (`dpkg-deb -c`), built as
/// tests/package_install.rs builds it (`cargo deb --no-build --strip`, with a target directory
/// of its own holding a copy of the binary under test).
fn deb_files() -> Result<BTreeSet<String>, String> {
    if !runs("cargo", &["deb", "--version"]) {
        return Err("cargo-deb is not installed: cargo install cargo-deb --locked".into());
    }
    let out = out_dir().join("deb");
    let release = out.join("target/release");
    std::fs::create_dir_all(&release).expect("create the .deb's target directory");
    std::fs::copy(env!("CARGO_BIN_EXE_relwatch"), release.join("relwatch"))
        .expect("copy the binary under test");
    let deb = out.join("relwatch.deb");
    succeed(
        Command::new("cargo")
            .args(["deb", "--no-build", "--strip", "-o"])
            .arg(&deb)
            .env("CARGO_TARGET_DIR", out.join("target")),
    );
    let listing = succeed(Command::new("dpkg-deb").arg("-c").arg(&deb));
    Ok(listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect())
}

/// The .rpm installs the files the .deb installs, where each format's conventions are the
/// same: units in /usr/lib/systemd/system (the .deb's /lib/systemd/system), zsh completions in
/// /usr/share/zsh/site-functions (Debian: vendor-completions); only the .deb has its lintian
/// overrides and Debian changelog, and only the .rpm has the systemd preset (Debian's
/// maintainer scripts enable the timer).
#[test]
fn it_ships_the_files_the_deb_ships() {
    let Some(rpm) = built() else { return };
    let deb = match deb_files() {
        Ok(files) => files,
        Err(why) => return skip(&why),
    };
    let deb: BTreeSet<String> = deb
        .into_iter()
        .filter(|p| {
            p != "/usr/share/lintian/overrides/relwatch"
                && p != "/usr/share/doc/relwatch/changelog.Debian.gz"
        })
        .map(|p| {
            p.replacen("/lib/systemd/", "/usr/lib/systemd/", 1)
                .replace("/zsh/vendor-completions/", "/zsh/site-functions/")
        })
        .collect();
    let rpm: BTreeSet<String> = entries(rpm)
        .into_iter()
        .filter(|(p, dir)| !dir && !p.starts_with("/usr/lib/systemd/system-preset/"))
        .map(|(p, _)| p)
        .collect();
    assert!(deb.len() >= 25, "the .deb's files: {deb:#?}");
    let only_deb: Vec<&String> = deb.difference(&rpm).collect();
    let only_rpm: Vec<&String> = rpm.difference(&deb).collect();
    assert!(
        only_deb.is_empty() && only_rpm.is_empty(),
        "only in the .deb: {only_deb:#?}\nonly in the .rpm: {only_rpm:#?}"
    );
}

/// Every path below the directories a package may touch, without what changes on its own
/// (logs, caches, the rpm database).
fn files(c: &Container) -> BTreeSet<String> {
    let mut argv = vec!["find", "/etc", "/usr", "/var", "-xdev"];
    for changing in ["/var/log/*", "/var/cache/*", "/var/tmp/*", "/var/lib/rpm/*"] {
        argv.extend(["-not", "-path", changing]);
    }
    c.ok(&argv).lines().map(str::to_string).collect()
}

/// What `systemctl VERB UNIT` says in `c` (`is-enabled`, `is-active`).
fn unit(c: &Container, verb: &str, unit: &str) -> String {
    c.run(["systemctl", verb, unit]).stdout.trim().to_string()
}

/// `rpm ARGS` in `c` with the container's own database (/var/lib/rpm) and Debian's consent
/// (`--force-debian`); asserts it exited 0 and returns what it printed.
fn rpm_in(c: &Container, args: &[&str]) -> String {
    let mut argv = vec!["rpm", "--dbpath", "/var/lib/rpm"];
    argv.extend_from_slice(args);
    let run = c.run(&argv);
    assert_eq!(run.code, 0, "{argv:?} failed\n{run}\n{}", c.console());
    format!("{}{}", run.stdout, run.stderr)
}

/// Installed with `rpm -i` under a real systemd (no dependencies checked: the rpm database in
/// the container knows none of Debian's packages): relwatch.timer is enabled by the package's
/// preset and active at once, relwatch-agent.service is not enabled, `rpm -e` leaves no file
/// behind; with an admin's preset that disables the timer, the install leaves it disabled and
/// stopped.
#[test]
fn the_rpm_installs_under_systemd_honours_presets_and_erases_clean() {
    let Some(rpm) = built() else { return };
    let pkg = util::tempdir();
    std::fs::copy(rpm, pkg.path().join("relwatch.rpm")).expect("copy the .rpm");
    let Some(c) = Container::boot_for_packages(&[(pkg.path(), "/opt/pkg")]) else {
        return;
    };
    c.ok(["mkdir", "-p", "/var/lib/rpm"]);
    rpm_in(&c, &["--initdb"]);
    let before = files(&c);
    let install = ["-i", "--nodeps", "--force-debian", "/opt/pkg/relwatch.rpm"];
    let said = rpm_in(&c, &install);
    assert_eq!(
        unit(&c, "is-enabled", "relwatch.timer"),
        "enabled",
        "{said}"
    );
    assert_eq!(unit(&c, "is-active", "relwatch.timer"), "active", "{said}");
    let agent = unit(&c, "is-enabled", "relwatch-agent.service");
    assert_eq!(agent, "disabled", "{said}");

    rpm_in(&c, &["-e", "--nodeps", "relwatch"]);
    let after = files(&c);
    let left: Vec<&String> = after.difference(&before).collect();
    let gone: Vec<&String> = before.difference(&after).collect();
    assert!(
        left.is_empty() && gone.is_empty(),
        "rpm -e left {left:#?} and took {gone:#?}"
    );

    // An admin's preset, of higher priority than the package's 50-relwatch.preset.
    c.ok(["mkdir", "-p", "/etc/systemd/system-preset"]);
    c.write(
        "/etc/systemd/system-preset/10-site.preset",
        "disable relwatch.timer\n",
    );
    let said = rpm_in(&c, &install);
    assert_eq!(
        unit(&c, "is-enabled", "relwatch.timer"),
        "disabled",
        "{said}"
    );
    assert_eq!(
        unit(&c, "is-active", "relwatch.timer"),
        "inactive",
        "{said}"
    );
}
