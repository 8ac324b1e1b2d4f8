//! Every webhook fixture in `tests/fixtures/webhook/` normalized, with the
//! fields the rules rely on pinned per fixture.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Value, json};
use waflow::event::{Event, EventKind, normalize};

fn load(name: &str) -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/webhook/{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One line per event with the fields that matter, `-` for none.
fn summary(event: &Event) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    match &event.kind {
        EventKind::Message(m) => format!(
            "message id={} chat={} group={} sender={} name={} from_me={} type={:?} text={} button={} delivery={:?} ts={} edited={}{}",
            m.id,
            m.chat,
            m.is_group,
            m.sender,
            o(&m.sender_name),
            m.from_me,
            m.kind,
            o(&m.text),
            o(&m.button_id),
            m.delivery,
            m.timestamp.map_or("-".into(), |t| t.to_string()),
            m.edited,
            m.media.as_ref().map_or(String::new(), |media| format!(
                " media={}|{}",
                o(&media.mimetype),
                o(&media.filename)
            )),
        ),
        EventKind::Status(s) => format!(
            "status id={} chat={} phone={} code={} name={} error={}",
            s.id,
            s.chat,
            o(&s.phone),
            s.code,
            s.name,
            o(&s.error)
        ),
        EventKind::Presence(p) => format!(
            "presence chat={} participant={} state={}",
            p.chat, p.participant, p.state
        ),
        EventKind::Contacts(cs) => cs
            .iter()
            .map(|c| {
                format!(
                    "contact id={} lid={} phone={} name={}",
                    c.id,
                    o(&c.lid),
                    o(&c.phone),
                    o(&c.name)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        EventKind::Groups(gs) => gs
            .iter()
            .map(|g| format!("group id={} subject={}", g.id, o(&g.subject)))
            .collect::<Vec<_>>()
            .join("; "),
        EventKind::Call(c) => format!(
            "call id={} from={} phone={} status={} video={}",
            c.id,
            c.from,
            o(&c.phone),
            c.status,
            c.is_video
        ),
        other => format!("{other:?}"),
    }
}

/// Each fixture: the events it gives, whether its event name is unknown, how many items it skips.
const EXPECTED: &[(&str, &[&str], bool, usize)] = &[
    (
        "a_append_offline",
        &[
            "message id=OFF1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=sent while you were offline button=- delivery=Append ts=1699990000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_audio_ptt",
        &[
            "message id=AUD1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Audio text=- button=- delivery=Notify ts=1700000000 edited=false media=audio/ogg; codecs=opus|-",
        ],
        false,
        0,
    ),
    (
        "a_broadcast_list",
        &[
            "message id=BL1 chat=1700000000@broadcast group=false sender=1700000000@broadcast name=Tran B from_me=false type=Text text=broadcast hello button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_buttons_reply",
        &[
            "message id=BTN1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Button text=View Products button=view_products delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_call",
        &[
            "call id=CALL1 from=84933313000@s.whatsapp.net phone=84933313000 status=offer video=false",
        ],
        false,
        0,
    ),
    (
        "a_contact_card",
        &[
            "message id=VC1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Contact text=Le C button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_contacts_update",
        &["contact id=84933313000@s.whatsapp.net lid=- phone=84933313000 name=Nguyen Van A"],
        false,
        0,
    ),
    (
        "a_contacts_upsert_lid",
        &[
            "contact id=123456789099999@lid lid=123456789099999@lid phone=84900000009 name=Known Later",
        ],
        false,
        0,
    ),
    (
        "a_direct_text",
        &[
            "message id=3EB0C431C26A1916D3E9 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=giá bao nhiêu? button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_document_with_caption",
        &[
            "message id=DOC1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Document text=my invoice button=- delivery=Notify ts=1700000000 edited=false media=application/pdf|invoice.pdf",
        ],
        false,
        0,
    ),
    (
        "a_edited_protocol",
        &[
            "message id=EDIT1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=price please button=- delivery=Notify ts=1700000000 edited=true",
        ],
        false,
        0,
    ),
    (
        "a_edited_wrapper",
        &[
            "message id=EDIT2 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=corrected text button=- delivery=Notify ts=1700000000 edited=true",
        ],
        false,
        0,
    ),
    (
        "a_ephemeral_text",
        &[
            "message id=EPH1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=menu button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_from_me_api_echo",
        &[
            "message id=BAE5F0E1D2C3B4A5 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=- from_me=true type=Text text=Cảm ơn bạn! button=- delivery=Append ts=1700000200 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_from_me_phone",
        &[
            "message id=3EB0FFEE00112233 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Shop from_me=true type=Text text=I'll handle this one myself button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_group_device_suffix",
        &[
            "message id=DEV1 chat=120363025246125486@g.us group=true sender=84987694574 name=Tran B from_me=false type=Text text=from a linked device button=- delivery=Notify ts=1700000100 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_group_text",
        &[
            "message id=3A1B2C3D4E5F chat=120363025246125486@g.us group=true sender=84987694574 name=Tran B from_me=false type=Text text=@84933313000 ok button=- delivery=Notify ts=1700000100 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_groups_update",
        &["group id=120363025246125486@g.us subject=Team Saigon"],
        false,
        0,
    ),
    (
        "a_image_caption",
        &[
            "message id=IMG1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Image text=ảnh sản phẩm button=- delivery=Notify ts=1700000000 edited=false media=image/jpeg|-",
        ],
        false,
        0,
    ),
    ("a_key_distribution_only", &[], false, 1),
    (
        "a_lid_direct_sender_pn",
        &[
            "message id=LID2 chat=123456789012346@lid group=false sender=84900000002 name=Pham D from_me=false type=Text text=hi button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_lid_direct_v7",
        &[
            "message id=LID1 chat=123456789012345@lid group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=hello from a lid button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_lid_group_participant_pn",
        &[
            "message id=LIDG1 chat=120363025246125486@g.us group=true sender=84900000003 name=Vo E from_me=false type=Text text=menu button=- delivery=Notify ts=1700000100 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_lid_unknown",
        &[
            "message id=LID3 chat=123456789099999@lid group=false sender=123456789099999@lid name=Nobody from_me=false type=Text text=who am i button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_list_reply",
        &[
            "message id=LIST1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=List text=T-Shirts button=mens_tshirts delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_location",
        &[
            "message id=LOC1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Location text=Ben Thanh Market button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_messages_update_enum",
        &[
            "status id=BAE5F0E1D2C3B4A5 chat=84933313000@s.whatsapp.net phone=84933313000 code=4 name=read error=-",
            "status id=BAE5F0E1D2C3B4A6 chat=84933313000@s.whatsapp.net phone=84933313000 code=0 name=failed error=479",
        ],
        false,
        1,
    ),
    (
        "a_messages_update_number",
        &[
            "status id=BAE5F0E1D2C3B4A5 chat=84933313000@s.whatsapp.net phone=84933313000 code=3 name=delivered error=-",
        ],
        false,
        0,
    ),
    (
        "a_multiple_messages",
        &[
            "message id=MULTI1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=first button=- delivery=Notify ts=1700000000 edited=false",
            "message id=MULTI2 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=second button=- delivery=Notify ts=1700000001 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_native_flow_reply",
        &[
            "message id=NF1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Button text=T-Shirts button=mens_tshirts delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_newsletter",
        &[
            "message id=NL1 chat=120363000000000001@newsletter group=false sender=120363000000000001@newsletter name=- from_me=false type=Text text=channel post button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_poll",
        &[
            "message id=POLL1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Poll text=Lunch? button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_presence",
        &[
            "presence chat=84933313000@s.whatsapp.net participant=84933313000@s.whatsapp.net state=composing",
        ],
        false,
        0,
    ),
    (
        "a_reaction",
        &[
            "message id=REACT1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Reaction text=👍 button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_status_broadcast",
        &[
            "message id=ST1 chat=status@broadcast group=false sender=status@broadcast name=Tran B from_me=false type=Image text=my story button=- delivery=Notify ts=1700000000 edited=false media=image/jpeg|-",
        ],
        false,
        0,
    ),
    (
        "a_sticker",
        &[
            "message id=STK1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Sticker text=- button=- delivery=Notify ts=1700000000 edited=false media=image/webp|-",
        ],
        false,
        0,
    ),
    ("a_stub_message", &[], false, 1),
    (
        "a_template_button_reply",
        &[
            "message id=TBTN1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Button text=View Products button=view_products delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "a_video",
        &[
            "message id=VID1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Video text=look button=- delivery=Notify ts=1700000000 edited=false media=video/mp4|-",
        ],
        false,
        0,
    ),
    (
        "a_view_once_image",
        &[
            "message id=VO1 chat=84933313000@s.whatsapp.net group=false sender=84933313000 name=Nguyen Van A from_me=false type=Image text=once button=- delivery=Notify ts=1700000000 edited=false media=image/jpeg|-",
        ],
        false,
        0,
    ),
    (
        "b_gen2_direct",
        &[
            "message id=G2D1 chat=123456789012348@lid group=false sender=84933313000 name=Nguyen Van A from_me=false type=Text text=giá bao nhiêu? button=- delivery=Notify ts=1700000000 edited=false",
        ],
        false,
        0,
    ),
    (
        "b_gen2_group",
        &[
            "message id=G2G1 chat=120363025246125486@g.us group=true sender=84987694574 name=Tran B from_me=false type=Text text=hello team button=- delivery=Notify ts=1700000100 edited=false",
        ],
        false,
        0,
    ),
    (
        "b_gen2_status",
        &[
            "status id=G2S1 chat=84933313000@s.whatsapp.net phone=84933313000 code=4 name=read error=-",
        ],
        false,
        0,
    ),
    (
        "c_received_button",
        &[
            "message id=3EB0C2 chat=123456789000001@lid group=false sender=91987000001 name=Amit from_me=false type=Button text=Yes button=confirm_yes delivery=Notify ts=- edited=false",
        ],
        false,
        0,
    ),
    (
        "c_received_message",
        &[
            "message id=3EB0C1 chat=91987000001@s.whatsapp.net group=false sender=91987000001 name=Amit from_me=false type=Text text=hello button=- delivery=Notify ts=- edited=false",
        ],
        false,
        0,
    ),
    ("unknown_connection_update", &[], true, 0),
    ("unknown_custom_event", &[], true, 0),
];

#[test]
fn every_fixture_normalizes_as_expected() {
    for (name, expected, unknown, skipped) in EXPECTED {
        let body = load(name);
        let out = normalize(body.clone());
        let got: Vec<String> = out.events.iter().map(summary).collect();
        assert_eq!(&got, expected, "fixture {name}");
        assert_eq!(out.unknown, *unknown, "fixture {name}: unknown");
        assert_eq!(
            out.skipped.len(),
            *skipped,
            "fixture {name}: skipped {:?}",
            out.skipped
        );
        let single = out.events.len() == 1;
        for e in &out.events {
            if single {
                assert_eq!(e.raw, body, "fixture {name}: raw keeps the original body");
            } else {
                // Several events: each keeps a small envelope with its own item.
                assert_eq!(e.raw["event"], out.event_name.as_str(), "fixture {name}");
                assert_eq!(e.raw["instance_id"], body["instance_id"], "fixture {name}");
                assert!(e.raw["data"].is_object(), "fixture {name}: {}", e.raw);
            }
            assert_eq!(e.instance_id.as_deref(), body["instance_id"].as_str());
        }
    }
}

/// An upsert of `n` copies of the direct-text message, each with its own id.
fn upsert_of(n: usize) -> serde_json::Value {
    let one = load("a_direct_text");
    let item = one["data"]["data"]["messages"][0].clone();
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let mut m = item.clone();
            m["key"]["id"] = json!(format!("ID{i}"));
            m
        })
        .collect();
    let mut body = one;
    body["data"]["data"]["messages"] = json!(items);
    body
}

#[test]
fn a_body_of_many_messages_costs_about_that_many_messages() {
    let body = upsert_of(800);
    let size = serde_json::to_vec(&body).unwrap().len();
    let out = normalize(body);
    assert_eq!(out.events.len(), 800);
    let kept: usize = out
        .events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap().len())
        .sum();
    // Each event keeps its own message (and its normalized form), not the body.
    assert!(
        kept < 8 * size,
        "800 events keep {kept} bytes of a {size}-byte body"
    );
    assert_eq!(out.events[7].raw["data"]["key"]["id"], "ID7");
}

#[test]
fn every_fixture_file_has_an_expectation() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhook");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            EXPECTED.iter().any(|(name, ..)| *name == stem),
            "fixture {stem} has no expectation"
        );
    }
}

#[test]
fn a_lid_sender_gets_the_phone_learned_from_contacts() {
    let contacts = normalize(load("a_contacts_upsert_lid"));
    let EventKind::Contacts(list) = &contacts.events[0].kind else {
        panic!()
    };
    let book: HashMap<String, String> = list
        .iter()
        .filter_map(|c| Some((c.lid.clone()?, c.phone.clone()?)))
        .collect();
    let mut out = normalize(load("a_lid_unknown"));
    out.events[0]
        .learn_phones(|jid| Ok::<_, std::convert::Infallible>(book.get(jid).cloned()))
        .unwrap();
    let EventKind::Message(m) = &out.events[0].kind else {
        panic!()
    };
    assert_eq!(m.sender, "84900000009");
    assert_eq!(m.sender_phone.as_deref(), Some("84900000009"));
    assert_eq!(m.sender_jid, "123456789099999@lid");
}

#[test]
fn media_fields_are_kept() {
    let out = normalize(load("a_document_with_caption"));
    let EventKind::Message(m) = &out.events[0].kind else {
        panic!()
    };
    let media = m.media.as_ref().unwrap();
    assert_eq!(media.url.as_deref(), Some("https://mmg.whatsapp.net/d.enc"));
    assert_eq!(media.filename.as_deref(), Some("invoice.pdf"));
    assert_eq!(media.caption.as_deref(), Some("my invoice"));
    let out = normalize(load("a_location"));
    let EventKind::Message(m) = &out.events[0].kind else {
        panic!()
    };
    let loc = m.location.as_ref().unwrap();
    assert_eq!(
        (loc.latitude, loc.longitude),
        (Some(10.7769), Some(106.7009))
    );
}

#[test]
fn non_objects_and_empty_bodies_are_unknown() {
    for body in [
        "null",
        "[]",
        "\"x\"",
        "{}",
        "{\"data\":{}}",
        "{\"data\":{\"event\":5}}",
    ] {
        let out = normalize(serde_json::from_str(body).unwrap());
        assert!(out.events.is_empty(), "{body}");
        assert!(out.unknown, "{body}");
    }
}
