//! ISO 9660 timestamps: the 7-byte form of directory records and the
//! 17-character form of volume descriptors, always in UTC.

/// (year, month, day, hour, minute, second) of a Unix time, UTC.
fn civil(epoch: i64) -> (i64, u8, u8, u8, u8, u8) {
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (secs / 3600) as u8,
        (secs / 60 % 60) as u8,
        (secs % 60) as u8,
    )
}

/// Directory-record time; years outside 1900..=2155 are clamped.
pub fn record(epoch: i64) -> [u8; 7] {
    let (y, mo, d, h, mi, s) = civil(epoch.clamp(-2_208_988_800, 5_900_000_000));
    [(y - 1900).clamp(0, 255) as u8, mo, d, h, mi, s, 0]
}

/// Volume-descriptor time ("YYYYMMDDHHMMSScc" + offset byte).
pub fn descriptor(epoch: i64) -> [u8; 17] {
    let (y, mo, d, h, mi, s) = civil(epoch.clamp(0, 253_402_300_799));
    let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}00");
    let mut out = [0u8; 17];
    out[..16].copy_from_slice(text.as_bytes());
    out
}

/// Parses a directory-record time back to a Unix time.
pub fn parse_record(raw: &[u8]) -> i64 {
    if raw.len() < 7 {
        return 0;
    }
    let year = 1900 + i64::from(raw[0]);
    let (m, d) = (
        i64::from(raw[1]).clamp(1, 12),
        i64::from(raw[2]).clamp(1, 31),
    );
    // days-from-civil, the inverse of `civil`.
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let offset = i64::from(raw[6] as i8) * 15 * 60;
    days * 86_400 + i64::from(raw[3]) * 3600 + i64::from(raw[4]) * 60 + i64::from(raw[5]) - offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(record(0), [70, 1, 1, 0, 0, 0, 0]);
        // 2024-02-29 12:34:56 UTC
        assert_eq!(record(1_709_210_096), [124, 2, 29, 12, 34, 56, 0]);
        assert_eq!(&descriptor(1_709_210_096)[..16], b"2024022912345600");
        assert_eq!(record(-10_000_000_000)[0], 0);
    }

    #[test]
    fn round_trip() {
        for t in [0, 1, 951_782_400, 1_709_210_096, 4_102_444_799] {
            assert_eq!(parse_record(&record(t)), t);
        }
    }
}
