use super::*;

#[test]
fn urls_take_lettres_form() {
    let t = Duration::from_secs(5);
    let r = Relay::from_url("smtp://127.0.0.1:2525", t)
        .unwrap()
        .unwrap();
    assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 2525));
    assert!(matches!(r.tls, Tls::None));
    assert!(r.credentials.is_none());
    let r = Relay::from_url(
        "smtp://ban%2Dtin:m%E1%BA%ADt@mail.example.vn/tinbao.example.vn?tls=required",
        t,
    )
    .unwrap()
    .unwrap();
    assert_eq!(r.port, 587);
    assert!(matches!(r.tls, Tls::Required(_)));
    assert!(r.credentials.is_some());
    assert_eq!(r.hello, ClientId::Domain("tinbao.example.vn".into()));
    assert_eq!(format!("{r:?}"), "smtp://mail.example.vn:587");
    assert!(
        Relay::from_url("smtps://mail.example.vn", t)
            .unwrap()
            .is_none()
    );
    let err = Relay::from_url("smtp://mail.example.vn?tls=maybe", t).unwrap_err();
    assert!(err.to_string().contains("maybe"), "{err}");
}

#[test]
fn data_doubles_leading_dots_and_ends_with_a_lone_dot() {
    let block = |s: &str| data_block(s.to_string());
    assert_eq!(block("a\r\n.b\r\n"), "a\r\n..b\r\n.\r\n");
    assert_eq!(block(".\r\n..\r\nx"), "..\r\n...\r\nx\r\n.\r\n");
    assert_eq!(block("một dòng"), "một dòng\r\n.\r\n");
    assert_eq!(
        block("hai dòng\r\nkhông chấm\r\n"),
        "hai dòng\r\nkhông chấm\r\n.\r\n"
    );
    assert_eq!(block(""), "\r\n.\r\n");
}

#[test]
fn percent_escapes_decode_to_utf8() {
    assert_eq!(percent_decode("m%E1%BA%ADt").as_deref(), Some("mật"));
    assert_eq!(percent_decode("a%2"), None);
}
