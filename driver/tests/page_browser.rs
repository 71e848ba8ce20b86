//! The pages open in a real browser: a valid run page, an invalid one and
//! the results index are loaded in headless Chromium, which must report no
//! script error, every plot image loaded, every inline SVG laid out, and
//! no page over 5 MB. String checks on the HTML cannot see a broken image
//! path or a script that throws; a browser can.
//!
//! Skipped, saying why, when `chromium` is not installed, unless
//! RAFT_REQUIRE_BROWSER=1 (CI), where its absence fails.

use raft_checker::generate::{generate, GenOptions};
use raft_checker::history::{Event, EventType, Process};
use raft_checker::report::write_run_outputs;
use raft_checker::{check_history, CheckOptions, RegisterKind, Validity};
use raft_driver::report::summary::{RunRecord, Summary};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAX_PAGE_BYTES: u64 = 5 << 20;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Written into a copy of the page, first thing in <head>: collects window
/// errors and failed resource loads, and after load writes what it found
/// (errors, images, SVG sizes) into the DOM as JSON for --dump-dom.
const PROBE: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target;
  if (t && t !== window && t.tagName) {
    window.__errors.push('failed to load ' + t.tagName + ' ' + (t.src || t.href));
  } else {
    window.__errors.push('script error: ' + e.message);
  }
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0};
  });
  var svgs = Array.prototype.map.call(document.querySelectorAll('svg'), function (s) {
    var r = s.getBoundingClientRect();
    return {w: r.width, h: r.height};
  });
  var out = document.createElement('pre');
  out.id = 'probe-result';
  var mark = 'PRO' + 'BE';
  out.textContent = mark + JSON.stringify({errors: window.__errors, imgs: imgs, svgs: svgs}) + mark;
  document.body.appendChild(out);
});
</script>"#;

#[derive(Debug)]
struct Seen {
    errors: Vec<String>,
    imgs: Vec<(String, bool)>,
    svgs: Vec<(f64, f64)>,
    console: Vec<String>,
}

/// Loads `page` in headless Chromium (through a probed copy beside it, so
/// that relative links resolve the same) and returns what it saw.
fn open(browser: &Path, page: &Path) -> Seen {
    let size = std::fs::metadata(page).unwrap().len();
    assert!(size < MAX_PAGE_BYTES, "{} is {size} bytes", page.display());
    let html = std::fs::read_to_string(page).unwrap();
    let at = html.find("<head>").map(|i| i + 6).unwrap_or(0);
    let probed = page.with_file_name(".probed.html");
    std::fs::write(&probed, format!("{}{PROBE}{}", &html[..at], &html[at..])).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", probed.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // A generous bound: the machine is shared with fault runs.
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let _ = std::fs::remove_file(&probed);
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = dom
        .split("PROBE")
        .nth(1)
        .unwrap_or_else(|| panic!("the probe never ran on {}: {stderr}", page.display()));
    let v: Value = serde_json::from_str(
        &json
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\""),
    )
    .unwrap_or_else(|e| panic!("probe output {json}: {e}"));
    Seen {
        errors: v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap_or("").to_string())
            .collect(),
        imgs: v["imgs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["src"].as_str().unwrap_or("").to_string(),
                    i["ok"] == json!(true),
                )
            })
            .collect(),
        svgs: v["svgs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["w"].as_f64().unwrap_or(0.0),
                    s["h"].as_f64().unwrap_or(0.0),
                )
            })
            .collect(),
        // Chromium logs page console errors as "CONSOLE" lines.
        console: stderr
            .lines()
            .filter(|l| l.contains("CONSOLE") && (l.contains("Uncaught") || l.contains("rror")))
            .map(String::from)
            .collect(),
    }
}

fn assert_clean(seen: &Seen, page: &str, min_imgs: usize, min_svgs: usize) {
    assert!(seen.errors.is_empty(), "{page}: {:?}", seen.errors);
    assert!(seen.console.is_empty(), "{page}: {:?}", seen.console);
    assert!(
        seen.imgs.len() >= min_imgs,
        "{page}: images {:?}",
        seen.imgs
    );
    for (src, ok) in &seen.imgs {
        assert!(ok, "{page}: image {src} did not load");
    }
    assert!(seen.svgs.len() >= min_svgs, "{page}: svgs {:?}", seen.svgs);
    for (w, h) in &seen.svgs {
        assert!(
            *w > 10.0 && *h > 10.0,
            "{page}: an SVG is not laid out: {w}x{h}"
        );
    }
}

fn nemesis(f: &str, time: u64, value: Value) -> Event {
    Event {
        index: 0,
        time,
        process: Process::nemesis(),
        kind: EventType::Info,
        f: f.into(),
        key: None,
        value,
        error: None,
    }
}

/// A run folder as raft-driver leaves it, with a generated history
/// (broken on some keys when `invalid`) and overlapping faults.
fn run_folder(results: &Path, name: &str, invalid: bool) -> PathBuf {
    let dir = results.join(name);
    std::fs::create_dir_all(dir.join("nodes")).unwrap();
    let mut events = generate(&GenOptions {
        ops: 3_000,
        keys: 12,
        processes: 8,
        info_rate: 0.02,
        values: 5,
        cas: true,
        seed: 11,
        stale_keys: if invalid { 12 } else { 0 },
        ..GenOptions::default()
    });
    let end = events.last().map(|e| e.time).unwrap_or(0);
    events.extend([
        nemesis("start-partition", end / 5, json!({"groups": [[1], [2, 3]]})),
        nemesis("start-pause", end / 4, json!({"nodes": [2]})),
        nemesis("stop-pause", end / 2, json!({"nodes": [2]})),
        nemesis(
            "stop-partition",
            end * 3 / 5,
            json!({"groups": [[1], [2, 3]]}),
        ),
        nemesis("start-kill", end * 7 / 10, json!({"nodes": [3]})),
    ]);
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let opts = CheckOptions {
        model: RegisterKind::CasRegister,
        ..CheckOptions::default()
    };
    let r = check_history(&events, &opts).expect("well formed");
    assert_eq!(r.valid == Validity::Invalid, invalid, "{}", r.summary);
    std::fs::write(
        dir.join("test.json"),
        json!({"seed": 11, "target": "raft", "driver_version": "raft-driver 0.1.0",
               "node_version": "raft-node 0.1.0", "started": name,
               "options": {"nemesis": ["partition", "pause", "kill"], "nemesis_label": "mix",
                           "nodes": 3, "time_limit": {"secs": 5, "nanos": 0}}})
        .to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("driver.log"), "driver log\n").unwrap();
    std::fs::write(dir.join("nodes/n1.log"), "node log\n").unwrap();
    let history: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join("history.jsonl"), history).unwrap();
    let run = raft_checker::verdict::compose(Some(r), Vec::new());
    write_run_outputs(&dir, &events, &run).expect("write outputs");
    dir
}

fn campaign(results: &Path, name: &str, verdicts: &[Validity]) {
    let dir = results.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let runs = verdicts
        .iter()
        .enumerate()
        .map(|(i, v)| RunRecord {
            index: i,
            nemesis: "kill".into(),
            nodes: 3,
            seed: i as u64,
            bug: None,
            verdict: *v,
            reason: None,
            ops: Some(1_000 + 100 * i as u64),
            p99_ms: Some(20.0 + i as f64),
            elapsed_s: 10.0,
            dir: None,
        })
        .collect();
    Summary::new(name.into(), vec![], verdicts.len(), runs)
        .write_all(&dir)
        .unwrap();
}

#[test]
fn run_pages_and_the_index_load_in_chromium_without_errors_and_with_every_plot() {
    let Some(browser) = chromium() else {
        if std::env::var("RAFT_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("RAFT_REQUIRE_BROWSER=1 but no chromium on PATH");
        }
        eprintln!("skipped: no chromium on PATH (install Debian's chromium, or set RAFT_REQUIRE_BROWSER=1 to fail instead)");
        return;
    };
    let results = tempfile::tempdir().unwrap();
    let valid = run_folder(results.path(), "20261201T100000-mix", false);
    let invalid = run_folder(results.path(), "20261201T110000-mix", true);
    campaign(
        results.path(),
        "campaign-20261130T090000",
        &[Validity::Valid, Validity::Valid],
    );
    campaign(
        results.path(),
        "campaign-20261201T090000",
        &[Validity::Valid, Validity::Invalid, Validity::Unknown],
    );
    let index = raft_driver::report::index::write(results.path()).expect("index");

    let seen = open(&browser, &valid.join("index.html"));
    assert_clean(&seen, "valid run page", 3, 0);

    let seen = open(&browser, &invalid.join("index.html"));
    // Three plots, and a witness timeline per violation shown.
    assert_clean(&seen, "invalid run page", 3, 1);

    let seen = open(&browser, &index);
    // Verdicts, throughput and p99 over the two campaigns.
    assert_clean(&seen, "results index", 0, 3);
}
