//! `Range` as RFC 9110 (section 14.2) lets a server treat it: one
//! well-formed `bytes` range is honoured (206, or 416 when it lies past the
//! end); anything else — several ranges, another unit, a malformed value —
//! may be ignored, and is: the whole file is sent with 200, which every
//! client handles (a 416 there made some give up).

use axum::http::{HeaderMap, header};

/// Removes a `Range` header this server does not honour.
pub fn keep_only_single_byte_range(headers: &mut HeaderMap) {
    let keep = {
        let values: Vec<_> = headers.get_all(header::RANGE).iter().collect();
        values.len() == 1 && values[0].to_str().is_ok_and(is_single_byte_range)
    };
    if !keep {
        headers.remove(header::RANGE);
    }
}

/// `bytes=FIRST-[LAST]` or `bytes=-SUFFIX` (unit case-insensitive, spaces
/// around the parts allowed).
fn is_single_byte_range(value: &str) -> bool {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return false;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return false;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return false;
    };
    // Positions past u64 are malformed here (ignored), not unsatisfiable.
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit()) && s.parse::<u64>().is_ok();
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, false) => digits(last),
        (false, true) => digits(first),
        (false, false) => {
            digits(first)
                && digits(last)
                && matches!((first.parse::<u64>(), last.parse::<u64>()), (Ok(a), Ok(b)) if a <= b)
        }
        (true, true) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_well_formed_byte_range_is_kept() {
        for good in [
            "bytes=0-3",
            "bytes=5-",
            "bytes=-10",
            "Bytes = 0-0",
            "bytes= 100-200",
        ] {
            assert!(is_single_byte_range(good), "{good}");
        }
        for bad in [
            "bytes=0-3,5-7",
            "items=0-3",
            "bytes=3-1",
            "bytes=-",
            "bytes=a-b",
            "bytes",
            "0-3",
            "bytes=99999999999999999999999-",
        ] {
            assert!(!is_single_byte_range(bad), "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.append(header::RANGE, "bytes=0-1".parse().unwrap());
        headers.append(header::RANGE, "bytes=2-3".parse().unwrap());
        keep_only_single_byte_range(&mut headers);
        assert!(headers.get(header::RANGE).is_none());
    }
}
