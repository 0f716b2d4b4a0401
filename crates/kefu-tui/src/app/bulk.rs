//! `/resolve-waiting [RANGE] [AGE] [dry-run]` in the compose box: an
//! admin resolves the waiting conversations of a flood in bulk (the
//! relay's `resolve_waiting`; it refuses anyone else).

use kefu_protocol::agent::bulk::{ResolveWaitingRequest, ResolvedWaiting};

const COMMAND: &str = "/resolve-waiting";
pub(super) const USAGE: &str =
    "usage: /resolve-waiting [203.0.113.0/24] [10m] [dry-run] (a range, an age, or both)";

/// What a draft says about bulk resolves.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BulkCommand {
    /// Not `/resolve-waiting`.
    None,
    Resolve(ResolveWaitingRequest),
    /// Neither a range nor an age, or two of one.
    Usage,
}

pub(super) fn bulk_command(draft: &str) -> BulkCommand {
    let Some(rest) = draft.trim().strip_prefix(COMMAND) else {
        return BulkCommand::None;
    };
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return BulkCommand::None;
    }
    let mut request = ResolveWaitingRequest::default();
    for word in rest.split_whitespace() {
        let taken = match (word, age_secs(word)) {
            ("dry-run" | "--dry-run", _) => std::mem::replace(&mut request.dry_run, true),
            (_, Some(secs)) => request.older_than_secs.replace(secs).is_some(),
            // The relay checks the range, as it knows what it keeps.
            (range, None) => request.address.replace(range.to_owned()).is_some(),
        };
        if taken {
            return BulkCommand::Usage;
        }
    }
    if request.address.is_none() && request.older_than_secs.is_none() {
        return BulkCommand::Usage;
    }
    BulkCommand::Resolve(request)
}

/// `90`, `90s`, `10m`, `2h` or `1d` in seconds.
fn age_secs(word: &str) -> Option<u64> {
    let (digits, unit) = match word.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => word.split_at(at),
        None => (word, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// The flash line for the relay's answer.
pub(super) fn answered(answer: ResolvedWaiting) -> String {
    if answer.dry_run {
        return format!(
            "dry run: {} waiting conversations match; nothing resolved",
            answer.matched
        );
    }
    format!(
        "resolved {} of {} matching waiting conversations",
        answer.resolved, answer.matched
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_commands_take_a_range_an_age_or_both() {
        assert_eq!(
            bulk_command("/resolve-waiting 203.0.113.0/24 10m dry-run"),
            BulkCommand::Resolve(ResolveWaitingRequest {
                address: Some("203.0.113.0/24".into()),
                older_than_secs: Some(600),
                dry_run: true,
            })
        );
        assert_eq!(
            bulk_command(" /resolve-waiting 2h "),
            BulkCommand::Resolve(ResolveWaitingRequest {
                older_than_secs: Some(7200),
                ..Default::default()
            })
        );
        for usage in [
            "/resolve-waiting",
            "/resolve-waiting dry-run",
            "/resolve-waiting 1m 2m",
            "/resolve-waiting 10.0.0.0/8 10.1.0.0/16",
        ] {
            assert_eq!(bulk_command(usage), BulkCommand::Usage, "{usage}");
        }
        for plain in [
            "hello",
            "/resolve-waitingx 1m",
            "please /resolve-waiting 1m",
        ] {
            assert_eq!(bulk_command(plain), BulkCommand::None, "{plain}");
        }
    }
}
