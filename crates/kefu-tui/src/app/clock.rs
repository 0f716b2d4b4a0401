//! Labels that move with the clock, and when they next move: the screen is
//! redrawn only when something changed, so whatever shows the time must say
//! when it will read differently.

use time::Duration;

/// A duration the way a queue shows it: `45s`, `12m`, `3h`, `2d`.
pub fn ago(duration: Duration) -> String {
    let seconds = duration.whole_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3_600 => format!("{}m", seconds / 60),
        3_600..86_400 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// How long until [`ago`] of `duration` shows something else.
pub fn ago_changes_in(duration: Duration) -> Duration {
    // Before the start (clocks disagree), it reads `0s` until one second in.
    if duration.is_negative() {
        return -duration + Duration::SECOND;
    }
    let unit = match duration.whole_seconds() {
        0..60 => 1,
        60..3_600 => 60,
        3_600..86_400 => 3_600,
        _ => 86_400,
    };
    let unit = Duration::seconds(unit);
    let into =
        Duration::nanoseconds((duration.whole_nanoseconds() % unit.whole_nanoseconds()) as i64);
    unit - into
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_change_is_when_the_label_turns() {
        for (elapsed, expected) in [
            (Duration::milliseconds(400), Duration::milliseconds(600)),
            (Duration::seconds(59), Duration::seconds(1)),
            (Duration::seconds(61), Duration::seconds(59)),
            (Duration::minutes(90), Duration::minutes(30)),
            (Duration::hours(30), Duration::hours(18)),
            (Duration::seconds(-2), Duration::seconds(3)),
        ] {
            let changes_in = ago_changes_in(elapsed);
            assert_eq!(changes_in, expected, "after {elapsed}");
            assert_eq!(
                ago(elapsed + changes_in - Duration::milliseconds(1)),
                ago(elapsed),
                "no change before it, after {elapsed}"
            );
            assert_ne!(ago(elapsed + changes_in), ago(elapsed), "a change at it");
        }
    }
}
