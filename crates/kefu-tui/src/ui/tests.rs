//! Whole screens rendered with ratatui's `TestBackend`, compared row by row.

mod conventions;
mod trail;

use crossterm::event::{KeyCode, KeyModifiers};
use kefu_protocol::agent::{AgentEvent, ConversationStatus, ConversationSummary, HistoryPage};
use kefu_protocol::{Author, AuthorKind, Message, TimelineEvent, Typing};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;

use crate::app::tests::{
    BOB, ME, NOW, changed, desk, frame, key, message, new_app, press, summary, type_text,
    welcome_frame,
};
use crate::app::{App, Input};
use crate::wrap::width;

/// The screen as text, one string per row; a wide character's second cell
/// is folded into it.
pub(super) fn rows(buffer: &Buffer) -> Vec<String> {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            let mut row = String::new();
            let mut covered = 0;
            for x in 0..area.width {
                if covered > 0 {
                    covered -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                row.push_str(symbol);
                covered = width(symbol).saturating_sub(1);
            }
            row
        })
        .collect()
}

pub(super) fn render(app: &mut App, width: u16, height: u16) -> Buffer {
    app.update(Input::Resize { width, height });
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test terminal");
    terminal
        .draw(|f| super::draw(app, f))
        .expect("drawing cannot fail on a test backend");
    terminal.backend().buffer().clone()
}

/// Compares whole screens; on a mismatch prints the actual one ready to
/// paste as the expectation.
fn assert_screen(buffer: &Buffer, expected: &[&str]) {
    let actual = rows(buffer);
    if actual != expected {
        let listing: Vec<String> = actual
            .iter()
            .map(|row| format!("        {row:?},"))
            .collect();
        panic!("screen differs; actual:\n{}", listing.join("\n"));
    }
}

pub(super) fn visitor(summary: &mut ConversationSummary, name: &str, online: bool, preview: &str) {
    summary.visitor.name = name.into();
    summary.visitor.online = online;
    summary.preview = preview.into();
}

/// Four conversations; Ming's (in Chinese) open, with a reply of ours the
/// visitor has seen, an internal note, a reply on its way and a draft.
fn busy_app() -> App {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Waiting, 5);
    visitor(&mut k1, "Ming 明", true, "有货吗？");
    k1.visitor.page_url = Some("https://shop.example/cart".into());
    k1.visitor.lang = Some("zh-CN".into());
    k1.visitor.email = Some("ming@example.com".into());
    k1.visitor.user_agent =
        Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into());
    k1.unread = 2;
    k1.visitor_messages = 2;
    k1.last_seq = 4;
    k1.visitor_read_seq = 3;
    let mut k2 = summary("k2", ConversationStatus::Waiting, 2);
    visitor(
        &mut k2,
        "Visitor #a3f9",
        false,
        "hello? anyone there to help me",
    );
    k2.unread = 3;
    k2.visitor_messages = 3;
    let mut k3 = summary("k3", ConversationStatus::Active, 1);
    visitor(&mut k3, "Olga", true, "Thanks!");
    let mut k4 = summary("k4", ConversationStatus::Active, 30);
    visitor(&mut k4, "Peter", false, "ok");
    k4.assignee = Some("a-bob".into());
    frame(&mut app, welcome_frame(vec![k1, k2, k3, k4]));

    key(&mut app, KeyCode::Enter);
    let from_ming = |seq, text| {
        let mut message = message("k1", seq, AuthorKind::Visitor, text);
        message.author.name = "Ming 明".into();
        message
    };
    let mut seen = message("k1", 3, AuthorKind::Agent, "有的，所有尺码都有。");
    seen.author.id = ME.into();
    let mut note = message("k1", 4, AuthorKind::Agent, "VIP: offer free shipping");
    note.internal = true;
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![
                from_ming(1, "你好！请问蓝色的有货吗？我想要一件中号的，谢谢 🙏"),
                from_ming(2, "Is the blue one in stock?"),
                seen,
                note,
            ],
        }),
    );
    type_text(&mut app, "Shipping is free 🎉");
    key(&mut app, KeyCode::Enter);
    type_text(&mut app, "Anything else? 还有");
    frame(
        &mut app,
        AgentEvent::Typing(Typing {
            conversation_id: "k1".into(),
            author: from_ming(1, "").author,
            active: true,
        }),
    );
    app
}

#[test]
fn the_whole_screen_at_80_by_24() {
    let mut app = busy_app();
    let buffer = render(&mut app, 80, 24);
    assert_screen(
        &buffer,
        &[
            "┌ Waiting 2  Mine 1 [All 4]──┐┌ Ming 明 · waiting 5m ──────────────────────────┐",
            "│1 ● Ming 明               5m││now on /cart                                    │",
            "│    typing…                 ││Firefox 128 · zh-CN · ming@example.com          │",
            "│2 ○ Visitor #a3f9     (3) 2m││                                                │",
            "│    hello? anyone there to …││                                                │",
            "│3 ● Olga                mine││                                                │",
            "│    Thanks!                 ││                                                │",
            "│4 ○ Peter                bob││09:51 Ming 明                                   │",
            "│    ok                      ││  你好！请问蓝色的有货吗？我想要一件中号的，谢谢│",
            "│                            ││  🙏                                            │",
            "│                            ││09:52 Ming 明                                   │",
            "│                            ││  Is the blue one in stock?                     │",
            "│                            ││09:53 alice · seen                              │",
            "│                            ││  有的，所有尺码都有。                          │",
            "│                            ││09:54 alice · internal note                     │",
            "│                            ││┃ VIP: offer free shipping                      │",
            "│                            ││--:-- alice · sending…                          │",
            "│                            ││  Shipping is free 🎉                           │",
            "│                            ││Ming 明 is typing…                              │",
            "│                            ││┌ Reply ───────────────────────────────────────┐│",
            "│                            │││Anything else? 还有                           ││",
            "│                            ││└──────────────────────────────────────────────┘│",
            "└────────────────────────────┘└────────────────────────────────────────────────┘",
            " ● online │ alice (available) │ 2 waiting                                ? help ",
        ],
    );
}

#[test]
fn internal_notes_are_styled_apart_from_replies() {
    let mut app = busy_app();
    let buffer = render(&mut app, 80, 24);
    let screen = rows(&buffer);
    let find = |needle: &str| {
        let y = screen
            .iter()
            .position(|row| row.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} is on screen"));
        let column = screen[y].find(needle).map(|at| width(&screen[y][..at]));
        (column.unwrap_or_default() as u16, y as u16)
    };
    let note = find("VIP: offer");
    assert_eq!(buffer[note].fg, Color::Yellow, "notes are yellow");
    let reply = find("Is the blue");
    assert_eq!(buffer[reply].fg, Color::Reset, "replies are plain");
}

#[test]
fn a_narrow_terminal_shows_one_pane_at_a_time() {
    let mut app = busy_app();
    let conversation = render(&mut app, 40, 14);
    assert_screen(
        &conversation,
        &[
            "┌ Ming 明 · waiting 5m ────────────────┐",
            "│now on /cart                          │",
            "│Firefox 128 · zh-CN · ming@example.com│",
            "│  有的，所有尺码都有。                │",
            "│09:54 alice · internal note           │",
            "│┃ VIP: offer free shipping            │",
            "│--:-- alice · sending…                │",
            "│  Shipping is free 🎉                 │",
            "│Ming 明 is typing…                    │",
            "│┌ Reply ─────────────────────────────┐│",
            "││Anything else? 还有                 ││",
            "│└────────────────────────────────────┘│",
            "└──────────────────────────────────────┘",
            " ● online │ alice │ 2 waiting    ? help ",
        ],
    );
    key(&mut app, KeyCode::Esc);
    let queue = render(&mut app, 40, 14);
    assert_screen(
        &queue,
        &[
            "┌ Waiting 2  Mine 1 [All 4]────────────┐",
            "│1 ● Ming 明                         5m│",
            "│    typing…                           │",
            "│2 ○ Visitor #a3f9               (3) 2m│",
            "│    hello? anyone there to help me    │",
            "│3 ● Olga                          mine│",
            "│    Thanks!                           │",
            "│4 ○ Peter                          bob│",
            "│    ok                                │",
            "│                                      │",
            "│                                      │",
            "│                                      │",
            "└──────────────────────────────────────┘",
            " ● online │ alice │ 2 waiting    ? help ",
        ],
    );
}

#[test]
fn help_lists_every_key_at_80_by_24() {
    let mut app = busy_app();
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('?'));
    let buffer = render(&mut app, 80, 24);
    assert_screen(
        &buffer,
        &[
            "┌ Keys (any key closes) ───────────────────────────────────────────────────────┐",
            "│anywhere                               queue                                  │",
            "│Tab / S-Tab      next / previous chat  ↑ ↓ / k j      move                    │",
            "│Alt-1 … Alt-9    open chat number n    Home End / g G first / last            │",
            "│Ctrl-N / Alt-a   next chat with news   ← → / F f      waiting / mine / all    │",
            "│Ctrl-P           the same, other end   Enter          open, write a reply     │",
            "│PgUp / PgDn      scroll, load older    c              claim                   │",
            "│Ctrl-R           canned reply picker   t              transfer to an agent    │",
            "│Alt-r            retry failed replies  r              resolve (may ask y/n)   │",
            "│Alt-e / Alt-x    edit / drop failed    i              internal-note mode      │",
            "│Ctrl-L           redraw the screen     v              visitor panel           │",
            "│F1 / Ctrl-C      help / quit           a              available / away        │",
            "│                                       s / Alt-s      ask for the screen      │",
            "│compose                                /              filter as you type      │",
            "│Enter            send (claims waiting) Ctrl-F         search (also compose)   │",
            "│Alt-Enter/Ctrl-J new line              H              resolved chats (history)│",
            "│/shortcut Enter  expand canned reply   Alt-o          open a chat's file      │",
            "│/attach · Alt-d  attach / drop a file  ? / q          help / quit             │",
            "│Ctrl-A / Ctrl-E  line start / end                                             │",
            "│Alt-b / Alt-f    word back / forward   mouse                                  │",
            "│Ctrl-W           delete word back      click          open a chat             │",
            "│Ctrl-U / Ctrl-K  delete to start / end wheel          scroll what is under it │",
            "│Esc              back to the queue     Shift-drag     select text to copy     │",
            "└──────────────────────────────────────────────────────────────────────────────┘",
        ],
    );
}

#[test]
fn an_empty_queue_before_the_first_welcome() {
    let mut app = new_app();
    app.update(Input::Tick(NOW));
    let buffer = render(&mut app, 80, 24);
    assert_screen(
        &buffer,
        &[
            "┌ Waiting 0  Mine 0 [All 0]──┐┌────────────────────────────────────────────────┐",
            "│No open conversations.      ││                                                │",
            "│                            ││Select a conversation and press Enter.          │",
            "│                            ││? lists every key.                              │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "│                            ││                                                │",
            "└────────────────────────────┘└────────────────────────────────────────────────┘",
            " ◌ connecting… │ 0 waiting                                               ? help ",
        ],
    );
}

/// Issue 16's repro: Olga opened from the Waiting tab, `Esc`, claimed —
/// she leaves the tab — then `t`: the prompt names her, not the visitor
/// who is now first in the tab.
#[test]
fn the_transfer_prompt_names_the_conversation_it_moves() {
    let mut app = desk();
    press(&mut app, KeyCode::Char('1'), KeyModifiers::ALT);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('c'));
    changed(&mut app, "olga", ConversationStatus::Active, Some(ME));
    key(&mut app, KeyCode::Char('t'));
    let screen = rows(&render(&mut app, 80, 24));
    assert!(
        screen.iter().any(|row| row.contains("Transfer Olga to…")),
        "{screen:#?}"
    );
}

#[test]
fn the_resolve_question_names_the_visitor_and_why_it_asks() {
    let mut app = desk();
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('r'));
    let screen = rows(&render(&mut app, 80, 24));
    for expected in [
        "Resolve Guest 7?",
        "It is not open and not yours.",
        "y resolves",
    ] {
        assert!(
            screen.iter().any(|row| row.contains(expected)),
            "{expected:?} in {screen:#?}"
        );
    }
}

/// The queue row that names `name`.
fn row_of(buffer: &Buffer, name: &str) -> String {
    rows(buffer)
        .into_iter()
        .find(|row| row.contains(name))
        .unwrap_or_else(|| panic!("no row names {name}"))
}

/// Issue 16, repro 3: opening a waiting chat must not read it for everybody.
/// The counts the queue shows are this agent's own (from its read marks),
/// so a peek clears only this agent's count, and the summary the relay
/// sends after it — whose `unread` is the count of the agent answering the
/// visitor, still 2 because nobody answering has read — does not bring it
/// back. (Whether the visitor sees "seen" is the relay's decision: the
/// `read` moves only this agent's mark unless it answers the visitor; see
/// relay tests `desk::each_agent_reads_for_itself…`.)
#[test]
fn a_peek_clears_only_the_agents_own_count() {
    use kefu_protocol::agent::{AgentReadMark, AgentRequest, ConversationFrame};

    let mut app = new_app();
    let mut guest = summary("k1", ConversationStatus::Waiting, 5);
    visitor(&mut guest, "Guest 7", true, "where is my order?");
    (guest.last_seq, guest.unread, guest.visitor_messages) = (2, 2, 2);
    let mut olga = summary("k2", ConversationStatus::Waiting, 3);
    visitor(&mut olga, "Olga", true, "hello?");
    (olga.last_seq, olga.unread, olga.visitor_messages) = (3, 3, 3);
    let AgentEvent::Welcome(mut welcome) = welcome_frame(vec![guest.clone(), olga]) else {
        unreachable!("welcome_frame makes a welcome");
    };
    // Read on another connection earlier: Olga's messages are read by us,
    // though nobody answering her has read them.
    welcome.read_marks = vec![AgentReadMark {
        conversation_id: "k2".into(),
        up_to_seq: 3,
        visitor_messages: 3,
    }];
    frame(&mut app, AgentEvent::Welcome(welcome));
    let screen = render(&mut app, 100, 20);
    assert!(row_of(&screen, "Guest 7").contains("(2)"));
    assert!(!row_of(&screen, "Olga").contains("(3)"), "read by us");

    // Peek at Guest 7: our own mark moves.
    let effects = key(&mut app, KeyCode::Enter);
    assert!(effects.iter().any(|effect| matches!(
        effect,
        crate::app::Effect::Request(AgentRequest::Read { conversation_id, up_to_seq: 2 })
            if conversation_id == "k1"
    )));
    key(&mut app, KeyCode::Esc);
    // The relay's next summary still counts 2 for whoever answers Guest 7.
    frame(
        &mut app,
        AgentEvent::Conversation(ConversationFrame {
            summary: guest.clone(),
        }),
    );
    let screen = render(&mut app, 100, 20);
    assert!(
        !row_of(&screen, "Guest 7").contains("(2)"),
        "our own count is cleared: {}",
        row_of(&screen, "Guest 7")
    );
    assert_eq!(app.conversations["k1"].summary.unread, 2, "not for others");
}

/// A timeline event as the relay sends it: internal, by the system, with
/// an English text the TUI does not show.
fn event(conversation: &str, seq: u64, event: TimelineEvent) -> Message {
    let mut message = message(conversation, seq, AuthorKind::System, &event.describe());
    message.author.name = "kefu".into();
    message.internal = true;
    message.event = Some(Box::new(event));
    message
}

fn agent(id: &str, name: &str) -> Author {
    Author {
        kind: AuthorKind::Agent,
        id: id.into(),
        name: name.into(),
    }
}

#[test]
fn timeline_events_are_dim_system_lines_between_the_messages() {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Active, 9);
    visitor(&mut k1, "Olga", true, "hello again");
    k1.assignee = Some(ME.into());
    k1.last_seq = 7;
    frame(&mut app, welcome_frame(vec![k1]));
    key(&mut app, KeyCode::Enter);
    let olga = || {
        let mut message = message("k1", 1, AuthorKind::Visitor, "");
        message.author.name = "Olga".into();
        message.author
    };
    let from_olga = |seq, text: &str| {
        let mut message = message("k1", seq, AuthorKind::Visitor, text);
        message.author = olga();
        message
    };
    // An agent's name is not visitor text, but is cleaned all the same.
    let bob = agent(BOB, "b\u{1b}[31mob\u{1b}]0;owned\u{7}");
    frame(
        &mut app,
        AgentEvent::History(HistoryPage {
            conversation_id: "k1".into(),
            messages: vec![
                from_olga(1, "hi"),
                event(
                    "k1",
                    2,
                    TimelineEvent::Claimed {
                        by: agent(ME, "alice"),
                    },
                ),
                message("k1", 3, AuthorKind::Agent, "hello Olga"),
                event(
                    "k1",
                    4,
                    TimelineEvent::Transferred {
                        by: agent(ME, "alice"),
                        to: bob.clone(),
                    },
                ),
                event("k1", 5, TimelineEvent::Resolved { by: bob }),
                event("k1", 6, TimelineEvent::Reopened { by: olga() }),
                from_olga(7, "hello again"),
            ],
        }),
    );
    let buffer = render(&mut app, 60, 20);
    assert_screen(
        &buffer,
        &[
            "┌ Waiting 0  Mine 1 [All ┐┌ Olga · yours ──────────────────┐",
            "│1 ● Olga            mine││(page unknown)                  │",
            "│    hello again         ││                                │",
            "│                        ││                                │",
            "│                        ││09:51 Olga                      │",
            "│                        ││  hi                            │",
            "│                        ││09:52 — alice claimed           │",
            "│                        ││09:53 alice                     │",
            "│                        ││  hello Olga                    │",
            "│                        ││09:54 — transferred to bob by al│",
            "│                        ││09:55 — resolved by bob         │",
            "│                        ││09:56 — reopened (visitor wrote │",
            "│                        ││09:57 Olga                      │",
            "│                        ││  hello again                   │",
            "│                        ││                                │",
            "│                        ││┌ Reply ───────────────────────┐│",
            "│                        │││Enter sends · Alt-Enter new li││",
            "│                        ││└──────────────────────────────┘│",
            "└────────────────────────┘└────────────────────────────────┘",
            " ● online │ alice (available) │ 0 waiting            ? help ",
        ],
    );
    let screen = rows(&buffer);
    let y = screen
        .iter()
        .position(|row| row.contains("— resolved by bob"))
        .expect("the resolve is on screen");
    assert_eq!(buffer[(27, y as u16)].fg, Color::DarkGray, "events are dim");
    let wide = rows(&render(&mut app, 120, 20));
    assert!(
        wide.iter()
            .any(|row| row.contains("09:54 — transferred to bob by alice ")),
        "{wide:#?}"
    );
}

#[test]
fn a_live_event_joins_the_timeline_without_a_bell() {
    let mut app = new_app();
    let mut k1 = summary("k1", ConversationStatus::Waiting, 2);
    visitor(&mut k1, "Olga", true, "hi");
    k1.last_seq = 1;
    frame(&mut app, welcome_frame(vec![k1]));
    let claimed = event(
        "k1",
        2,
        TimelineEvent::Claimed {
            by: agent(BOB, "bob"),
        },
    );
    let effects = frame(&mut app, AgentEvent::Message(claimed));
    assert!(
        effects.is_empty(),
        "an event rings nothing: {}",
        effects.len()
    );
    let conversation = &app.conversations["k1"];
    assert!(!conversation.activity, "an event is no new message");
    assert_eq!(conversation.summary.unread, 0);
    assert!(conversation.messages.contains_key(&2));
}
