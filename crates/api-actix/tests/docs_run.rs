//! The docs run: every shell block of `README.md` and `docs/*.md` is executed, in order, and
//! what a block says it prints is compared with what it prints. A doc that drifts from the
//! binary fails here, naming the doc, the block's line and the difference.
//!
//! The convention (also in the README, "Docs are tested"):
//!
//! - A fenced block tagged `sh`, `bash` or `shell` runs. Other fences (`json`, `text`, `sql`, an
//!   untagged one…) are illustrations and do not.
//! - A block that must not run is preceded, on the line right above its fence, by
//!   `<!-- docs-test: skip (the reason) -->`. The reason is required.
//! - Lines starting with `#>` right after a command are what it prints on standard output (they
//!   are shell comments, so a block still pastes as it is). `…` inside such a line stands for any
//!   text on that line (an id, a time, a key); a line that is only `…` stands for any number of
//!   lines. Trailing spaces, `\r` and trailing empty lines are ignored; everything else must
//!   match. A command without `#>` lines may print anything. Standard error is not compared.
//! - The blocks of one doc are one `bash` script (`set -euo pipefail`), so they share variables
//!   and the working directory, and any failing command or unset variable fails the doc.
//! - Each doc runs in a fresh directory laid out like the repository's root after the README's
//!   build step: `target/release/api-actix` (the binary cargo built for this test) and a link to
//!   `examples/`, nothing else. `README.md` runs as a reader runs it: its build step is skipped
//!   (marked), its `export PATH=…` puts `api-actix` on the path, and it starts the server
//!   itself. Every file in `docs/` runs as if right after the Quick start: `api-actix` on the
//!   path, and a fresh server that this test starts in that directory (its own SQLite store,
//!   `./jobtactics.db`; its log in `./server.log`). Whatever a doc starts in the background is
//!   stopped with it (each doc's shell is a process group of its own).
//! - Addresses: the docs call the service at `127.0.0.1:8080` (the default `JT_BIND`), further
//!   instances at `127.0.0.1:8081` to `:8089`, and metrics at `127.0.0.1:9464`; the README tells
//!   the reader to replace the address when serving elsewhere, and the test does exactly that,
//!   with free ports, in every runnable block and its `#>` lines. `JT_BIND`, `JT_PUBLIC_URL` and
//!   `JT_METRICS_BIND` are set to the substituted addresses, so a server a doc starts listens
//!   where the doc's requests go. Nothing else is inherited from the environment but `PATH`,
//!   `HOME` and the locale.
//! - Besides the binary the examples use `curl`, `jq`, `python3` and `openssl`, and
//!   `docs/scale-out.md` the Redis on 127.0.0.1:6379 (`scripts/ensure-services.sh` starts it).
//!
//! `JT_DOCS_TEST_ONLY=docs/api.md` runs one doc; `JT_DOCS_TEST_BIN=/path/to/api-actix` runs the
//! docs against another build (e.g. a release binary) while writing them.

// Tests fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The most one doc may take before it is stopped and reported.
const DOC_TIMEOUT: Duration = Duration::from_secs(120);
const SKIP_MARKER: &str = "<!-- docs-test: skip (";
const MARKER_PREFIX: &str = "<!-- docs-test:";

// --- Parsing ------------------------------------------------------------------------------

/// A fenced block of a markdown file.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    /// The block's lines with their 1-based line numbers.
    lines: Vec<(usize, String)>,
    skip: Option<String>,
}

impl Block {
    fn runs(&self) -> bool {
        self.skip.is_none() && matches!(self.lang.as_str(), "sh" | "bash" | "shell")
    }
}

/// The fenced blocks of `text`, with their skip markers. A marker that is malformed, or not
/// right above a fence, is an error (a typo must not silently run or skip a block).
fn parse(text: &str) -> Result<Vec<Block>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, Block)> = None;
    let mut pending_marker: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        if let Some((fence, fence_indent, block)) = open.as_mut() {
            let rest = trimmed.strip_prefix(fence.as_str());
            if rest.is_some_and(|r| r.trim().chars().all(|c| fence.starts_with(c))) {
                blocks.push(open.take().map(|(_, _, b)| b).unwrap());
            } else {
                let strip = indent.min(*fence_indent);
                block.lines.push((number, raw[strip..].to_owned()));
            }
            continue;
        }
        let fence_char = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let fence_len = fence_char.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        if fence_len >= 3 {
            let fence = trimmed[..fence_len].to_owned();
            let info = trimmed[fence_len..].trim();
            let lang = info.split_whitespace().next().unwrap_or("").to_owned();
            let skip = match pending_marker.take() {
                Some((marker_line, reason)) if marker_line + 1 == number => Some(reason),
                Some((marker_line, _)) => {
                    return Err(format!(
                        "line {marker_line}: a docs-test marker must be right above a fence"
                    ));
                }
                None => None,
            };
            open = Some((
                fence,
                indent,
                Block {
                    line: number,
                    lang,
                    lines: Vec::new(),
                    skip,
                },
            ));
            continue;
        }
        if let Some((marker_line, _)) = &pending_marker {
            return Err(format!(
                "line {marker_line}: a docs-test marker must be right above a fence"
            ));
        }
        if trimmed.starts_with(MARKER_PREFIX) {
            let reason = trimmed
                .trim_end()
                .strip_prefix(SKIP_MARKER)
                .and_then(|r| r.strip_suffix(") -->"))
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    format!(
                        "line {number}: write the marker as `<!-- docs-test: skip (a reason) -->`, \
                         not `{}`",
                        trimmed.trim_end()
                    )
                })?;
            pending_marker = Some((number, reason.to_owned()));
        }
    }
    if let Some((_, _, block)) = open {
        return Err(format!("line {}: this fence is never closed", block.line));
    }
    if let Some((marker_line, _)) = pending_marker {
        return Err(format!(
            "line {marker_line}: a docs-test marker must be right above a fence"
        ));
    }
    Ok(blocks)
}

/// A run of commands, and what the doc says they print (`None`: not shown, not compared).
#[derive(Debug)]
struct Segment {
    /// The opening fence's line, to name the block.
    block_line: usize,
    code: Vec<(usize, String)>,
    expected: Option<Vec<(usize, String)>>,
}

fn output_line(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("#>")?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Splits a runnable block into segments: commands, then the `#>` lines that follow them.
fn segments(block: &Block) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut code = Vec::new();
    let mut expected: Vec<(usize, String)> = Vec::new();
    for (number, line) in &block.lines {
        if let Some(shown) = output_line(line) {
            expected.push((*number, shown.to_owned()));
            continue;
        }
        if !expected.is_empty() {
            out.push(Segment {
                block_line: block.line,
                code: std::mem::take(&mut code),
                expected: Some(std::mem::take(&mut expected)),
            });
        }
        code.push((*number, line.clone()));
    }
    let expected = (!expected.is_empty()).then_some(expected);
    if !code.is_empty() || expected.is_some() {
        out.push(Segment {
            block_line: block.line,
            code,
            expected,
        });
    }
    out
}

// --- Matching -----------------------------------------------------------------------------

/// `pattern` against one line: `…` matches any run of characters.
fn line_matches(pattern: &str, line: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let line: Vec<char> = line.chars().collect();
    let (mut p, mut l) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while l < line.len() {
        if p < pattern.len() && pattern[p] == '…' {
            star = Some((p, l));
            p += 1;
        } else if p < pattern.len() && pattern[p] == line[l] {
            p += 1;
            l += 1;
        } else if let Some((sp, sl)) = star {
            p = sp + 1;
            l = sl + 1;
            star = Some((sp, sl + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '…')
}

/// Expected lines against actual lines: a line that is only `…` matches any number of lines.
fn lines_match(expected: &[String], actual: &[String]) -> bool {
    let Some((first, rest)) = expected.split_first() else {
        return actual.is_empty();
    };
    if first == "…" {
        return (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]));
    }
    actual
        .split_first()
        .is_some_and(|(line, more)| line_matches(first, line) && lines_match(rest, more))
}

/// Lines without `\r` and trailing spaces, without trailing empty lines.
fn normalized<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = lines
        .map(|l| l.trim_end_matches(['\r', ' ', '\t']).to_owned())
        .collect();
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    out
}

// --- Running ------------------------------------------------------------------------------

/// `kill SIGNAL -- -PGID`: whether the group had a process to signal.
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A child in a process group of its own; on drop the whole group is ended, so nothing a
/// doc started in the background (a server, a second instance) outlives the test.
struct Group {
    child: Child,
}

impl Group {
    fn spawn(command: &mut Command) -> std::io::Result<Group> {
        command
            .process_group(0)
            .spawn()
            .map(|child| Group { child })
    }

    /// Waits for the group's leader, at most `limit`; `None` when it had to be stopped.
    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for Group {
    /// SIGTERM to the whole group (the server drains and exits at once), SIGKILL to whatever is
    /// left after 5 s. The leader is reaped meanwhile: a zombie would still count as alive.
    fn drop(&mut self) {
        let pgid = self.child.id();
        if signal_group(pgid, "-TERM") {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                let _ = self.child.try_wait();
                if !signal_group(pgid, "-0") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            signal_group(pgid, "-KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `GET /healthz` answers 200.
fn healthy(port: u16) -> bool {
    let Ok(mut conn) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    conn.write_all(request.as_bytes()).is_ok()
        && conn.read_to_string(&mut answer).is_ok()
        && answer.starts_with("HTTP/1.1 200")
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn indented(text: &str) -> String {
    text.lines().fold(String::new(), |mut out, l| {
        let _ = writeln!(out, "    {l}");
        out
    })
}

/// How one doc is run.
struct Setup {
    binary: PathBuf,
    /// Start a server for the doc (every doc but the README, which starts its own).
    server: bool,
    /// Put `target/release` of the doc's directory on `PATH` (the README's step does it itself).
    on_path: bool,
}

/// Runs the shell blocks of `text` (named `name` in messages); `Err` lists every difference.
fn run_doc(name: &str, text: &str, setup: &Setup) -> Result<(), String> {
    let blocks = parse(text).map_err(|e| format!("{name}: {e}"))?;
    // Free ports for the addresses the docs use, substituted in every runnable block.
    let mut ports: BTreeMap<String, String> = BTreeMap::new();
    for port in (8080..=8089).chain(std::iter::once(9464)) {
        ports.insert(
            format!("127.0.0.1:{port}"),
            format!("127.0.0.1:{}", free_port()),
        );
    }
    let substitute = |line: &str| {
        ports
            .iter()
            .fold(line.to_owned(), |l, (from, to)| l.replace(from, to))
    };
    let segments: Vec<Segment> = blocks
        .iter()
        .filter(|b| b.runs())
        .flat_map(segments)
        .map(|mut s| {
            for (_, line) in &mut s.code {
                *line = substitute(line);
            }
            for (_, line) in s.expected.iter_mut().flatten() {
                *line = substitute(line);
            }
            s
        })
        .collect();
    if segments.is_empty() {
        return Ok(());
    }

    let work = tempfile::tempdir().unwrap();
    let harness = tempfile::tempdir().unwrap();
    let (dir, state) = (work.path(), harness.path());
    let release = dir.join("target/release");
    fs::create_dir_all(&release).unwrap();
    std::os::unix::fs::symlink(&setup.binary, release.join("api-actix")).unwrap();
    std::os::unix::fs::symlink(repository().join("examples"), dir.join("examples")).unwrap();

    // The script: every segment in order, the ones with `#>` lines writing their output apart.
    let mut script = String::from("set -euo pipefail\n");
    let _ = writeln!(script, "__dt_state='{}'", state.display());
    script.push_str("trap 'echo \"$LINENO\" > \"$__dt_state/err_line\"' ERR\n");
    let mut line_map: Vec<usize> = vec![0; script.lines().count()];
    for (index, segment) in segments.iter().enumerate() {
        let _ = writeln!(script, "echo {index} > \"$__dt_state/at\"");
        line_map.push(segment.code.first().map_or(segment.block_line, |c| c.0));
        if segment.expected.is_some() {
            script.push_str("{\n");
            line_map.push(segment.block_line);
        }
        for (number, line) in &segment.code {
            script.push_str(line);
            script.push('\n');
            line_map.push(*number);
        }
        if segment.expected.is_some() {
            let _ = writeln!(script, "}} > \"$__dt_state/out.{index}\"");
            line_map.push(segment.block_line);
        }
    }
    script.push_str("echo end > \"$__dt_state/at\"\n");
    fs::write(state.join("script.sh"), &script).unwrap();

    let port_of = |addr: &str| ports[addr].clone();
    let bind = port_of("127.0.0.1:8080");
    let mut path = std::env::var("PATH").unwrap_or_default();
    if setup.on_path {
        path = format!("{}:{path}", release.display());
    }
    let environment = |c: &mut Command| {
        c.current_dir(dir).env_clear().env("PATH", &path);
        for var in [
            "HOME",
            "LANG",
            "LC_ALL",
            "TMPDIR",
            "PYENV_ROOT",
            "PYENV_VERSION",
        ] {
            if let Ok(value) = std::env::var(var) {
                c.env(var, value);
            }
        }
        c.env("JT_BIND", &bind)
            .env("JT_PUBLIC_URL", format!("http://{bind}"))
            .env("JT_METRICS_BIND", port_of("127.0.0.1:9464"));
    };

    let _server = if setup.server {
        let log = fs::File::create(dir.join("server.log")).unwrap();
        let mut command = Command::new(&setup.binary);
        environment(&mut command);
        command
            .arg("serve")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut server = Group::spawn(&mut command).unwrap();
        let port: u16 = bind.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !healthy(port) {
            if server.child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                return Err(format!(
                    "{name}: the server did not start:\n{}",
                    indented(&tail(&dir.join("server.log"), 20))
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    } else {
        None
    };

    let stdout = fs::File::create(state.join("stdout")).unwrap();
    let stderr = fs::File::create(state.join("stderr")).unwrap();
    let mut command = Command::new("bash");
    environment(&mut command);
    command
        .arg(state.join("script.sh"))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    let mut shell = Group::spawn(&mut command).unwrap();
    let status = shell.wait(DOC_TIMEOUT);
    drop(shell);

    let at = fs::read_to_string(state.join("at")).unwrap_or_default();
    let context = || {
        format!(
            "  standard error (last lines):\n{}  server.log (last lines):\n{}",
            indented(&tail(&state.join("stderr"), 15)),
            indented(&tail(&dir.join("server.log"), 5)),
        )
    };
    let mut failures = Vec::new();
    // Compare what ran.
    for (index, segment) in segments.iter().enumerate() {
        let Some(expected) = &segment.expected else {
            continue;
        };
        let Ok(actual) = fs::read_to_string(state.join(format!("out.{index}"))) else {
            break;
        };
        if at.trim() == index.to_string() {
            break; // It failed inside this segment: reported below.
        }
        let want = normalized(expected.iter().map(|(_, l)| l.as_str()));
        let got = normalized(actual.lines());
        if !lines_match(&want, &got) {
            let first = segment.code.first().map_or(segment.block_line, |c| c.0);
            let last = expected.last().map_or(first, |e| e.0);
            failures.push(format!(
                "{name}, block at line {}: lines {first}-{last} print something else\n  \
                 the doc shows (`…` is any text):\n{}  the command printed:\n{}",
                segment.block_line,
                indented(&want.join("\n")),
                indented(&got.join("\n")),
            ));
        }
    }
    let failed_at = at.trim().parse::<usize>().ok().map(|i| &segments[i]);
    match (status, failed_at) {
        (Some(s), None) if s.success() && at.trim() == "end" => {}
        (None, segment) => failures.push(format!(
            "{name}: still running after {} s{}\n{}",
            DOC_TIMEOUT.as_secs(),
            segment.map_or(String::new(), |s| format!(
                ", in the block at line {} (from line {})",
                s.block_line,
                s.code.first().map_or(s.block_line, |c| c.0)
            )),
            context()
        )),
        (Some(s), segment) => {
            let err_line = fs::read_to_string(state.join("err_line"))
                .ok()
                .and_then(|l| l.trim().parse::<usize>().ok())
                .and_then(|l| line_map.get(l.wrapping_sub(1)).copied())
                .filter(|l| *l > 0);
            let (block, from) = segment.map_or((0, 0), |s| {
                (s.block_line, s.code.first().map_or(s.block_line, |c| c.0))
            });
            failures.push(format!(
                "{name}, block at line {block}: a command failed ({s}){}\n{}",
                err_line.map_or(format!(" in the lines from {from}"), |l| format!(
                    " at line {l}"
                )),
                context()
            ));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `README.md`, then `docs/*.md` by name.
fn docs() -> Vec<PathBuf> {
    let root = repository();
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root.join("README.md"));
    docs
}

fn relative(path: &Path) -> String {
    let root = repository().canonicalize().unwrap();
    let path = path.canonicalize().unwrap();
    path.strip_prefix(&root)
        .unwrap_or(&path)
        .display()
        .to_string()
}

/// The tools the docs call, besides `api-actix`.
fn require_tools() {
    for (tool, package) in [
        ("bash", "bash"),
        ("curl", "curl"),
        ("jq", "jq"),
        ("python3", "python3"),
        ("openssl", "openssl"),
    ] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the docs' examples need `{tool}`: install it (apt-get install {package})"
        );
    }
}

#[test]
fn every_shell_block_in_the_docs_runs_and_prints_what_the_doc_shows() {
    require_tools();
    let binary = std::env::var_os("JT_DOCS_TEST_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_api-actix")),
        PathBuf::from,
    );
    let only = std::env::var("JT_DOCS_TEST_ONLY").ok();
    let mut failures = Vec::new();
    let mut ran = 0;
    for doc in docs() {
        let name = relative(&doc);
        if only.as_ref().is_some_and(|o| *o != name) {
            continue;
        }
        let readme = name == "README.md";
        let setup = Setup {
            binary: binary.clone(),
            server: !readme,
            on_path: !readme,
        };
        let started = Instant::now();
        let text = fs::read_to_string(&doc).unwrap();
        if let Err(e) = run_doc(&name, &text, &setup) {
            failures.push(e);
        }
        ran += 1;
        eprintln!("{name}: {:.1} s", started.elapsed().as_secs_f64());
    }
    assert!(ran > 0, "no doc matched JT_DOCS_TEST_ONLY={only:?}");
    assert!(
        failures.is_empty(),
        "{} doc(s) do not run as written:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The harness itself: a doc that drifts fails, naming the doc, the block, the line and the
/// difference; skipped and non-shell blocks do not run; shared state carries across blocks.
#[test]
fn a_drifted_doc_fails_naming_the_block_and_the_difference() {
    let setup = Setup {
        binary: PathBuf::from("/bin/false"),
        server: false,
        on_path: false,
    };
    let good = "Intro.\n\n```sh\nGREETING=hello\necho \"$GREETING, id 42\"\n#> hello, id …\n```\n\n\
                <!-- docs-test: skip (shows a failure) -->\n```sh\nfalse\n```\n\n```json\n{}\n```\n\n\
                ```bash\nprintf 'a\\nb\\nc\\n'\n#> a\n#> …\n#> c\necho \"$GREETING\"\n#> hello\n```\n";
    run_doc("good.md", good, &setup).unwrap();

    let wrong = good.replace("#> hello\n```", "#> goodbye\n```");
    let err = run_doc("wrong.md", &wrong, &setup).unwrap_err();
    assert!(
        err.contains("wrong.md, block at line 18: lines 23-24 print something else"),
        "{err}"
    );
    assert!(
        err.contains("goodbye") && err.contains("    hello"),
        "{err}"
    );

    let unset = good.replace("echo \"$GREETING\"", "echo \"$CURSOR\"");
    let err = run_doc("unset.md", &unset, &setup).unwrap_err();
    assert!(
        err.contains("unset.md, block at line 18: a command failed"),
        "{err}"
    );
    assert!(err.contains("CURSOR: unbound variable"), "{err}");

    let failing = good.replace("GREETING=hello", "GREETING=hello\nfalse");
    let err = run_doc("failing.md", &failing, &setup).unwrap_err();
    assert!(
        err.contains("failing.md, block at line 3: a command failed (exit status: 1) at line 5"),
        "{err}"
    );

    let bad_marker = good.replace("skip (shows a failure)", "skip");
    assert!(
        run_doc("marker.md", &bad_marker, &setup)
            .unwrap_err()
            .contains("marker.md: line 9: write the marker as")
    );
}

#[test]
fn ellipses_match_any_text_on_a_line_or_any_lines() {
    let lines = |s: &str| s.lines().map(str::to_owned).collect::<Vec<_>>();
    assert!(line_matches(
        r#"{"id":"key_…","n":1}"#,
        r#"{"id":"key_abc","n":1}"#
    ));
    assert!(!line_matches(
        r#"{"id":"key_…","n":1}"#,
        r#"{"id":"key_abc","n":2}"#
    ));
    assert!(line_matches("…", ""));
    assert!(line_matches("a…b…c", "aXbYbZc"));
    assert!(!line_matches("a…b", "aXbY"));
    assert!(lines_match(
        &lines("HTTP/1.1 200 OK\n…\nx: 1"),
        &lines("HTTP/1.1 200 OK\nx: 1")
    ));
    assert!(lines_match(
        &lines("HTTP/1.1 200 OK\n…\nx: 1"),
        &lines("HTTP/1.1 200 OK\na: 2\nb: 3\nx: 1")
    ));
    assert!(!lines_match(&lines("a\n…\nx"), &lines("a\nb\ny")));
}
