//! Every cell of the TCP transition tables against the tables written down
//! in the reference (`ipvs-kernel.md` §3.3, from `ip_vs_proto_tcp.c`), and
//! the secure_tcp table against the reference's list of differences.

use rvs_conn::tcp::{self, next_state_for, Event, TableDir};

const STATES: [&str; 11] = [
    "NO", "ES", "SS", "SR", "FW", "TW", "CL", "CW", "LA", "LI", "SA",
];

const INPUT: &str = "
| syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| fin | CL | CW | SS | TW | TW | TW | CL | CW | LA | LI | TW |
| ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | SR |";

const OUTPUT: &str = "
| syn | SS | ES | SS | SR | SS | SS | SS | SS | SS | LI | SR |
| fin | TW | FW | SS | TW | FW | TW | CL | TW | LA | LI | TW |
| ack | ES | ES | SS | ES | FW | TW | CL | CW | LA | ES | ES |
| rst | CL | CL | SS | CL | CL | TW | CL | CL | CL | CL | CL |";

const INPUT_ONLY: &str = "
| syn | SR | ES | ES | SR | SR | SR | SR | SR | SR | SR | SR |
| fin | CL | FW | SS | TW | FW | TW | CL | CW | LA | LI | TW |
| ack | ES | ES | SS | ES | FW | TW | CL | CW | CL | LI | ES |
| rst | CL | CL | CL | SR | CL | CL | CL | CL | LA | LI | CL |";

/// The reference's list of secure_tcp cells that differ: (direction,
/// event, current state, next state).
const SECURE_DIFFS: &[(TableDir, Event, &str, &str)] = &[
    (TableDir::Input, Event::Syn, "SA", "SA"),
    (TableDir::Input, Event::Fin, "SA", "SA"),
    (TableDir::Input, Event::Ack, "SR", "SR"),
    (TableDir::Input, Event::Ack, "SA", "SA"),
    (TableDir::Input, Event::Rst, "SA", "CL"),
    (TableDir::Output, Event::Syn, "SR", "SA"),
    (TableDir::Output, Event::Syn, "SA", "SA"),
    (TableDir::InputOnly, Event::Syn, "NO", "SA"),
    (TableDir::InputOnly, Event::Syn, "FW", "SA"),
    (TableDir::InputOnly, Event::Syn, "TW", "SA"),
    (TableDir::InputOnly, Event::Syn, "CL", "SA"),
    (TableDir::InputOnly, Event::Syn, "CW", "SA"),
    (TableDir::InputOnly, Event::Syn, "LA", "SA"),
    (TableDir::InputOnly, Event::Syn, "LI", "SA"),
    (TableDir::InputOnly, Event::Syn, "SA", "SA"),
];

fn state(abbr: &str) -> u8 {
    STATES.iter().position(|s| *s == abbr).expect("state") as u8
}

fn event(name: &str) -> Event {
    match name {
        "syn" => Event::Syn,
        "fin" => Event::Fin,
        "ack" => Event::Ack,
        "rst" => Event::Rst,
        _ => panic!("event {name}"),
    }
}

/// (event, from, to) for every cell of a markdown table.
fn cells(table: &str) -> Vec<(Event, u8, u8)> {
    let mut out = Vec::new();
    for line in table.lines().filter(|l| l.starts_with('|')) {
        let f: Vec<&str> = line
            .split('|')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(f.len(), 12, "{line}");
        for (col, to) in f[1..].iter().enumerate() {
            out.push((event(f[0]), col as u8, state(to)));
        }
    }
    assert_eq!(out.len(), 44);
    out
}

fn check(dir: TableDir, table: &str) {
    for (ev, from, to) in cells(table) {
        assert_eq!(
            next_state_for(false, dir, ev, from),
            to,
            "{dir:?} {ev:?} in {}",
            STATES[from as usize]
        );
    }
}

#[test]
fn input_table() {
    check(TableDir::Input, INPUT);
}

#[test]
fn output_table() {
    check(TableDir::Output, OUTPUT);
}

#[test]
fn input_only_table() {
    check(TableDir::InputOnly, INPUT_ONLY);
}

#[test]
fn secure_table_differs_exactly_where_the_reference_says() {
    for (dir, table) in [
        (TableDir::Input, INPUT),
        (TableDir::Output, OUTPUT),
        (TableDir::InputOnly, INPUT_ONLY),
    ] {
        for (ev, from, normal) in cells(table) {
            let diff = SECURE_DIFFS
                .iter()
                .find(|(d, e, f, _)| *d == dir && *e == ev && state(f) == from);
            let want = diff.map(|(_, _, _, to)| state(to)).unwrap_or(normal);
            assert_eq!(
                next_state_for(true, dir, ev, from),
                want,
                "secure {dir:?} {ev:?} in {}",
                STATES[from as usize]
            );
        }
    }
}

#[test]
fn flags_pick_the_row() {
    // SYN+ACK is a syn event; FIN+ACK a fin event; RST wins over all.
    assert_eq!(
        tcp::next_state(false, TableDir::Output, tcp::SYN | tcp::ACK, tcp::SYN_RECV),
        tcp::SYN_RECV
    );
    assert_eq!(
        tcp::next_state(
            false,
            TableDir::Output,
            tcp::FIN | tcp::ACK,
            tcp::ESTABLISHED
        ),
        tcp::FIN_WAIT
    );
    assert_eq!(
        tcp::next_state(
            false,
            TableDir::Input,
            tcp::RST | tcp::ACK,
            tcp::ESTABLISHED
        ),
        tcp::CLOSE
    );
}
