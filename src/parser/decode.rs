//! Bytes of one line to text: UTF-8, windows-1251, or `auto` (UTF-8, falling back to
//! windows-1251 for a line that is not valid UTF-8 — older Sonix+ installations write
//! Russian text in the Windows code page, newer ones in UTF-8, and a protocol can hold
//! both after an upgrade).
//!
//! Decoding is per line, not per file, so one odd line cannot turn a whole file into
//! mojibake; the line terminator's `\r` and a leading BOM are dropped here.

use std::borrow::Cow;

use crate::config::Encoding;

pub fn decode(raw: &[u8], encoding: Encoding) -> Cow<'_, str> {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(raw),
        Encoding::Windows1251 => encoding_rs::WINDOWS_1251.decode_without_bom_handling(raw).0,
        Encoding::Auto => match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => encoding_rs::WINDOWS_1251.decode_without_bom_handling(raw).0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_falls_back_per_line() {
        let cp1251 = encoding_rs::WINDOWS_1251.encode("ОШИБКА датчик").0;
        assert_eq!(decode(&cp1251, Encoding::Auto), "ОШИБКА датчик");
        assert_eq!(
            decode("ОШИБКА датчик\r".as_bytes(), Encoding::Auto),
            "ОШИБКА датчик"
        );
        assert_eq!(decode(b"\xEF\xBB\xBFERROR x", Encoding::Utf8), "ERROR x");
        assert_eq!(decode(&cp1251, Encoding::Windows1251), "ОШИБКА датчик");
        assert!(decode(&cp1251, Encoding::Utf8).contains('\u{FFFD}'));
    }
}
