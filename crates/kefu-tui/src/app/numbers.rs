//! The `Alt-1` … `Alt-9` numbers of the queue's rows.
//!
//! A number names a conversation, not a position: it is given to a row
//! when the row comes into the tab's first nine and kept while it stays
//! among them, so a claim, a new visitor or a message that reorders the
//! list never makes `Alt-3` open someone else than the `3` the agent just
//! read. A freed number goes to the next unnumbered row of the first nine.
//! Switching tabs is a new view: its rows are numbered afresh, top to
//! bottom.

use super::queue::Filter;

/// How many rows can have a number (`Alt-1` … `Alt-9`).
pub const SLOTS: usize = 9;

#[derive(Debug, Clone, Default)]
pub struct Numbers {
    /// The tab these numbers were given under.
    filter: Option<Filter>,
    /// Slot `n` holds the conversation numbered `n + 1`.
    slots: [Option<String>; SLOTS],
}

impl Numbers {
    /// Brings the numbers up to date with the tab's `rows`, in queue order.
    pub fn refresh(&mut self, filter: Filter, rows: &[String]) {
        if self.filter != Some(filter) {
            *self = Numbers {
                filter: Some(filter),
                ..Numbers::default()
            };
        }
        // Only the top rows are numbered: the numbers are for what is in
        // view, and a row that sinks below gives its number up.
        let rows = &rows[..rows.len().min(SLOTS)];
        for slot in &mut self.slots {
            if slot.as_ref().is_some_and(|id| !rows.contains(id)) {
                *slot = None;
            }
        }
        let mut unnumbered = rows
            .iter()
            .filter(|id| !self.slots.iter().flatten().any(|held| held == *id))
            .cloned()
            .collect::<Vec<_>>()
            .into_iter();
        for slot in &mut self.slots {
            if slot.is_none() {
                *slot = unnumbered.next();
            }
        }
    }

    /// The number shown for `id` (from 1), if it has one.
    pub fn of(&self, id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|slot| slot.as_deref() == Some(id))
            .map(|at| at + 1)
    }

    /// The conversation `Alt-n` opens (`n` from 0).
    pub fn get(&self, n: usize) -> Option<&str> {
        self.slots.get(n).and_then(|slot| slot.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn numbers_stay_with_their_rows_while_the_list_changes() {
        let mut numbers = Numbers::default();
        numbers.refresh(Filter::Waiting, &ids(&["a", "b", "c"]));
        assert_eq!((numbers.of("a"), numbers.of("c")), (Some(1), Some(3)));
        // `a` leaves, `x` comes in on top: `b` and `c` keep 2 and 3.
        numbers.refresh(Filter::Waiting, &ids(&["x", "b", "c"]));
        assert_eq!(numbers.of("b"), Some(2));
        assert_eq!(numbers.of("c"), Some(3));
        assert_eq!(numbers.of("x"), Some(1), "the freed number is reused");
        assert_eq!(numbers.get(0), Some("x"));
        // A new tab numbers its rows afresh.
        numbers.refresh(Filter::All, &ids(&["c", "x"]));
        assert_eq!((numbers.of("c"), numbers.of("x")), (Some(1), Some(2)));
    }

    #[test]
    fn only_nine_rows_are_numbered() {
        let rows: Vec<String> = (0..12).map(|i| format!("r{i}")).collect();
        let mut numbers = Numbers::default();
        numbers.refresh(Filter::All, &rows);
        assert_eq!(numbers.of("r8"), Some(9));
        assert_eq!(numbers.of("r9"), None);
        numbers.refresh(Filter::All, &rows[1..]);
        assert_eq!(
            numbers.of("r9"),
            Some(1),
            "the next row takes the freed one"
        );
        // r11 moves to the top: r9 falls to tenth and gives 1 up to it.
        let mut moved = rows[1..].to_vec();
        moved.rotate_right(1);
        numbers.refresh(Filter::All, &moved);
        assert_eq!(numbers.of("r11"), Some(1));
        assert_eq!(numbers.of("r9"), None);
        assert_eq!(numbers.of("r1"), Some(2), "the others keep theirs");
        assert_eq!(numbers.of("r8"), Some(9));
    }
}
