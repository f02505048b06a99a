//! `troupe top --connect ADDR`: a live terminal view (ratatui) of a
//! runtime serving a dashboard, from the same JSON API as `troupe ps`:
//! totals and rates, the busiest commands, and the processes sorted by
//! mailbox, memory, instructions or pid.
//!
//! On a terminal it redraws every interval until `q`; when stdout is not
//! a terminal (a pipe, a file) it prints one frame as plain text and
//! exits, like `top -b -n 1`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use ratatui::Frame;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use serde_json::Value as Json;
use troupe::{Error, ErrorKind, Pid};

use crate::Output;
use crate::dashboard_cli::{ApiClient, ConnectArgs, mailbox, waiting};

/// Arguments of `troupe top`.
#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    connect: ConnectArgs,

    /// How often to read the runtime again, in milliseconds (100 to
    /// 60000).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    interval: u64,

    /// What the process table is sorted by (`s` cycles through them).
    #[arg(long, value_enum, default_value_t = SortBy::Mailbox)]
    sort: SortBy,
}

/// The orders of the process table, each largest first (pid: oldest
/// first).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Messages queued.
    Mailbox,
    /// Memory used.
    Memory,
    /// Instructions counted.
    Instructions,
    /// Pid.
    Pid,
}

impl SortBy {
    fn next(self) -> Self {
        match self {
            SortBy::Mailbox => SortBy::Memory,
            SortBy::Memory => SortBy::Instructions,
            SortBy::Instructions => SortBy::Pid,
            SortBy::Pid => SortBy::Mailbox,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SortBy::Mailbox => "mailbox",
            SortBy::Memory => "memory",
            SortBy::Instructions => "instructions",
            SortBy::Pid => "pid",
        }
    }

    /// `list` in this order.
    fn sort(self, list: &mut [Json]) {
        let num = |p: &Json, path: &[&str]| path.iter().fold(p, |v, k| &v[*k]).as_u64();
        // Pids this process cannot read (another node's) sort last.
        let pid = |p: &Json| {
            let pid = p["pid"].as_str().and_then(|t| t.parse::<Pid>().ok());
            (pid.is_none(), pid)
        };
        match self {
            SortBy::Mailbox => list.sort_by_key(|p| std::cmp::Reverse(num(p, &["mailbox", "len"]))),
            SortBy::Memory => list.sort_by_key(|p| std::cmp::Reverse(num(p, &["memory"]))),
            SortBy::Instructions => {
                list.sort_by_key(|p| std::cmp::Reverse(num(p, &["instructions"])));
            }
            SortBy::Pid => list.sort_by_cached_key(pid),
        }
    }
}

/// One reading of the runtime.
struct Sample {
    at: Instant,
    stats: Json,
    processes: Vec<Json>,
}

/// What one frame shows.
struct View {
    addr: String,
    sort: SortBy,
    /// The first process row shown.
    scroll: usize,
    now: Sample,
    before: Option<Sample>,
    /// Why the last reading failed, if it did (the frame shows the one
    /// before).
    trouble: Option<String>,
}

impl View {
    /// The growth per second of the counter at `path` of the stats since
    /// the previous reading.
    fn rate(&self, path: &[&str]) -> Option<f64> {
        self.per_second(|s| path.iter().fold(s, |v, k| &v[*k]).as_u64())
    }

    /// Calls per second of command `name` since the previous reading.
    fn command_rate(&self, name: &str) -> Option<f64> {
        self.per_second(|s| {
            s["commands"]
                .as_array()?
                .iter()
                .find(|c| c["name"] == name)
                .and_then(|c| c["calls"].as_u64())
        })
    }

    /// How fast the counter `read` takes out of the stats grew per second
    /// since the previous reading (from 0 if it was not there yet).
    fn per_second(&self, read: impl Fn(&Json) -> Option<u64>) -> Option<f64> {
        let before = self.before.as_ref()?;
        let grown = read(&self.now.stats)?.saturating_sub(read(&before.stats).unwrap_or(0));
        let secs = self.now.at.duration_since(before.at).as_secs_f64();
        (secs > 0.0).then(|| grown as f64 / secs)
    }
}

impl TopArgs {
    /// Shows the runtime until `q` on a terminal; one frame otherwise.
    pub fn execute(self) -> Result<Output, Error> {
        let client = ApiClient::new(self.connect)?;
        let mut view = View {
            addr: client.addr().to_string(),
            sort: self.sort,
            scroll: 0,
            now: read(&client)?,
            before: None,
            trouble: None,
        };
        if !std::io::stdout().is_terminal() {
            return Ok(Output::Text(plain(&mut view)));
        }
        let interval = Duration::from_millis(self.interval);
        let mut terminal = ratatui::init();
        let shown = live(&mut terminal, &client, &mut view, interval);
        ratatui::restore();
        shown.map(|()| Output::Text(String::new()))
    }
}

/// Reads the stats and the processes.
fn read(client: &ApiClient) -> Result<Sample, Error> {
    let stats = client.get("/api/stats")?;
    let processes = match client.get("/api/processes")? {
        Json::Array(list) => list,
        other => {
            return Err(Error::new(
                ErrorKind::Internal,
                format!("/api/processes is not a list: {other}"),
            ));
        }
    };
    Ok(Sample {
        at: Instant::now(),
        stats,
        processes,
    })
}

/// Redraws `view` and reads again every `interval` until `q`, Esc or
/// Ctrl-C.
fn live(
    terminal: &mut ratatui::DefaultTerminal,
    client: &ApiClient,
    view: &mut View,
    interval: Duration,
) -> Result<(), Error> {
    let term_err = |e: std::io::Error| Error::new(ErrorKind::Internal, format!("terminal: {e}"));
    let mut next = Instant::now() + interval;
    loop {
        terminal.draw(|f| draw(f, view)).map_err(term_err)?;
        let wait = next.saturating_duration_since(Instant::now());
        if event::poll(wait).map_err(term_err)? {
            if let Event::Key(key) = event::read().map_err(term_err)? {
                if key.kind != KeyEventKind::Press {
                    continue;
                }
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                match key.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    _ if ctrl_c => return Ok(()),
                    KeyCode::Char('s') => view.sort = view.sort.next(),
                    KeyCode::Down | KeyCode::Char('j') => {
                        view.scroll = view.scroll.saturating_add(1)
                    }
                    KeyCode::Up | KeyCode::Char('k') => view.scroll = view.scroll.saturating_sub(1),
                    KeyCode::PageDown => view.scroll = view.scroll.saturating_add(20),
                    KeyCode::PageUp => view.scroll = view.scroll.saturating_sub(20),
                    _ => {}
                }
            }
            continue;
        }
        next = Instant::now() + interval;
        match read(client) {
            Ok(sample) => {
                view.before = Some(std::mem::replace(&mut view.now, sample));
                view.trouble = None;
            }
            Err(e) => view.trouble = Some(e.to_string()),
        }
    }
}

/// The width of the frame printed when stdout is not a terminal.
const PLAIN_WIDTH: u16 = 132;

/// The most lines of that frame: the processes beyond it are left out.
const PLAIN_LINES: usize = 1000;

/// One frame of `view` as plain text, tall enough for every process (up
/// to [`PLAIN_LINES`]), trailing blanks trimmed.
fn plain(view: &mut View) -> String {
    let commands = view.now.stats["commands"]
        .as_array()
        .map_or(0, Vec::len)
        .min(COMMANDS_SHOWN);
    // The header (4 lines at most), then each table with its borders and
    // its head row.
    let lines = 4 + (commands + 3) + (view.now.processes.len() + 3);
    let height = u16::try_from(lines.min(PLAIN_LINES)).unwrap_or(u16::MAX);
    let width = PLAIN_WIDTH;
    // A test backend cannot fail (its error type is `Infallible`).
    let Ok(mut terminal) = Terminal::new(TestBackend::new(width, height));
    let Ok(_) = terminal.draw(|f| draw(f, view));
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        let line: String = (0..width)
            .filter_map(|x| buffer.cell((x, y)).map(|c| c.symbol().to_owned()))
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.trim_end().to_owned()
}

/// `n` with a unit of bytes a person reads at a glance.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A rate as `+N/s`, or nothing before the second reading.
fn per_second(rate: Option<f64>) -> String {
    rate.map_or(String::new(), |r| format!(" (+{r:.0}/s)"))
}

/// Draws one frame: totals, commands, processes.
fn draw(f: &mut Frame, view: &mut View) {
    view.sort.sort(&mut view.now.processes);
    let stats = &view.now.stats;
    let num = |path: &[&str]| path.iter().fold(stats, |v, k| &v[*k]).as_u64().unwrap_or(0);
    let census = |status: &str| -> u64 {
        stats["census"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|c| c["status"] == status)
            .filter_map(|c| c["count"].as_u64())
            .sum()
    };
    let failed: u64 = stats["exited"]["failed"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Json::as_u64).sum());
    let mut header = vec![
        Line::from(format!(
            "troupe top - {} - sorted by {} (s: sort, arrows: scroll, q: quit)",
            view.addr,
            view.sort.name()
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
        Line::from(format!(
            "processes {}: running {}, runnable {}, waiting {}, exiting {} | memory {} | timers {}",
            num(&["processes"]),
            census("running"),
            census("runnable"),
            census("waiting"),
            census("exiting"),
            bytes(num(&["memory_in_use"])),
            num(&["timers_pending"]),
        )),
        Line::from(format!(
            "spawned {}{} | exited {} normal, {} killed, {} failed | messages {}{} | mailbox full {} | to dead {}",
            num(&["spawned"]),
            per_second(view.rate(&["spawned"])),
            num(&["exited", "normal"]),
            num(&["exited", "killed"]),
            failed,
            num(&["messages", "sent"]),
            per_second(view.rate(&["messages", "sent"])),
            num(&["messages", "mailbox_full"]),
            num(&["messages", "to_dead"]),
        )),
    ];
    if let Some(trouble) = &view.trouble {
        header.push(Line::from(format!("last read failed: {trouble}")));
    }
    let header_height = u16::try_from(header.len()).unwrap_or(4);
    let commands = command_rows(view);
    let commands_height = u16::try_from(commands.len()).unwrap_or(0).saturating_add(3);
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(header_height),
        Constraint::Length(commands_height.min(10)),
        Constraint::Min(3),
    ])
    .areas(f.area());
    f.render_widget(Paragraph::new(header), top);
    f.render_widget(
        Table::new(
            commands,
            [
                Constraint::Length(28),
                Constraint::Length(12),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Length(12),
            ],
        )
        .header(bold_row([
            "COMMAND",
            "CALLS",
            "CALLS/S",
            "WAITS",
            "MEAN WAIT",
        ]))
        .block(Block::bordered().title(" commands ")),
        middle,
    );
    let rows_shown = usize::from(bottom.height.saturating_sub(3));
    let total = view.now.processes.len();
    view.scroll = view.scroll.min(total.saturating_sub(rows_shown));
    let rows = view
        .now
        .processes
        .iter()
        .skip(view.scroll)
        .take(rows_shown)
        .map(process_row);
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(14),
                Constraint::Length(16),
                Constraint::Length(22),
                Constraint::Length(9),
                Constraint::Length(22),
                Constraint::Length(11),
                Constraint::Length(10),
                Constraint::Length(13),
            ],
        )
        .header(bold_row([
            "PID",
            "NAME",
            "SCRIPT",
            "STATUS",
            "WAITING ON",
            "MAILBOX",
            "MEMORY",
            "INSTRUCTIONS",
        ]))
        .block(Block::bordered().title(format!(
            " processes {}-{} of {total} ",
            (view.scroll + 1).min(total),
            (view.scroll + rows_shown).min(total)
        ))),
        bottom,
    );
}

fn bold_row<const N: usize>(cells: [&'static str; N]) -> Row<'static> {
    Row::new(cells).style(Style::new().add_modifier(Modifier::BOLD))
}

/// How many commands the frame shows.
const COMMANDS_SHOWN: usize = 7;

/// The commands called most since the last reading (before a second
/// reading: most called), at most [`COMMANDS_SHOWN`].
fn command_rows(view: &View) -> Vec<Row<'static>> {
    let list = view.now.stats["commands"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut ranked: Vec<(&Json, f64)> = list
        .iter()
        .map(|c| {
            let name = c["name"].as_str().unwrap_or("");
            let rank = view
                .command_rate(name)
                .unwrap_or_else(|| c["calls"].as_f64().unwrap_or(0.0));
            (c, rank)
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
        .into_iter()
        .take(COMMANDS_SHOWN)
        .map(|(c, _)| {
            let name = c["name"].as_str().unwrap_or("").to_owned();
            let waits = c["waits"]["count"].as_u64().unwrap_or(0);
            let mean = match (c["waits"]["sum_ms"].as_f64(), waits) {
                (Some(sum), n) if n > 0 => format!("{:.2} ms", sum / n as f64),
                _ => String::new(),
            };
            let rate = view
                .command_rate(&name)
                .map_or(String::new(), |r| format!("{r:.0}"));
            Row::new([
                name,
                c["calls"].as_u64().unwrap_or(0).to_string(),
                rate,
                waits.to_string(),
                mean,
            ])
        })
        .collect()
}

/// One process's row.
fn process_row(p: &Json) -> Row<'static> {
    let text = |v: &Json| v.as_str().unwrap_or("").to_owned();
    let num = |v: &Json| v.as_u64().map_or(String::new(), |n| n.to_string());
    Row::new([
        text(&p["pid"]),
        text(&p["name"]),
        text(&p["script"]),
        text(&p["status"]),
        waiting(p),
        mailbox(p),
        p["memory"].as_u64().map_or(String::new(), bytes),
        num(&p["instructions"]),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(spawned: u64, calls: u64, processes: Vec<Json>) -> Sample {
        Sample {
            at: Instant::now(),
            stats: json!({
                "processes": processes.len(),
                "census": [{"status": "waiting", "kind": "isolated", "count": processes.len()}],
                "spawned": spawned,
                "exited": {"normal": 1, "killed": 0, "failed": {"TIMEOUT": 2}},
                "messages": {"sent": 10, "mailbox_full": 0, "to_dead": 0},
                "memory_in_use": 3 * 1024 * 1024,
                "timers_pending": 0,
                "commands": [{"name": "time.sleep", "calls": calls,
                              "waits": {"count": 2, "sum_ms": 40.0}}],
            }),
            processes,
        }
    }

    fn process(pid: &str, mailbox: u64) -> Json {
        json!({"pid": pid, "name": null, "script": "w.lua", "status": "waiting",
               "waiting": {"on": "receive", "topic": "job"},
               "mailbox": {"len": mailbox, "capacity": 100}, "memory": 2048})
    }

    #[test]
    fn a_frame_shows_totals_rates_commands_and_sorted_processes() {
        let mut before = sample(100, 10, vec![]);
        before.at = Instant::now() - Duration::from_secs(2);
        let list = vec![process("<0.7>", 1), process("<0.12>", 9)];
        let mut view = View {
            addr: "127.0.0.1:4000".into(),
            sort: SortBy::Mailbox,
            scroll: 0,
            now: sample(300, 30, list),
            before: Some(before),
            trouble: None,
        };
        let text = plain(&mut view);
        assert!(
            text.contains("processes 2: running 0, runnable 0, waiting 2"),
            "{text}"
        );
        assert!(text.contains("memory 3.0 MiB"), "{text}");
        assert!(
            text.contains("exited 1 normal, 0 killed, 2 failed"),
            "{text}"
        );
        // 200 spawns in about 2 s.
        assert!(text.contains("spawned 300 (+"), "{text}");
        assert!(text.contains("time.sleep"), "{text}");
        assert!(text.contains("20.00 ms"), "the mean wait: {text}");
        let first = text.find("<0.12>").expect("pid 12 shown");
        let second = text.find("<0.7>").expect("pid 7 shown");
        assert!(first < second, "the fuller mailbox first: {text}");
        assert!(text.contains("receive job"), "{text}");
    }

    #[test]
    fn pids_sort_by_number_not_text() {
        let mut list = vec![process("<0.12>", 0), process("<0.7>", 0)];
        SortBy::Pid.sort(&mut list);
        assert_eq!(list[0]["pid"], "<0.7>");
    }
}
