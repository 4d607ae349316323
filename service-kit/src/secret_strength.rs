//! How much guessing a shared secret (`INTERNAL_API_TOKEN`) withstands: a
//! conservative estimate of its entropy, in bits, so that production can
//! refuse one a person made up. Length says little: `"s".repeat(40)` has 40
//! characters and no secret in it.
//!
//! The estimate errs low. It counts, character by character, what a
//! guesser could not have predicted:
//!
//! 1. A character is worth at most `log2` of the alphabet that the string's
//!    classes span together (lower case 26, upper case 26, digits 10, ASCII
//!    punctuation 33, anything else 100), and at most the string's own
//!    Shannon entropy per character: few distinct characters are worth
//!    little, however many times they come.
//! 2. A character that follows from the one before is worth nothing: the
//!    same again (`aaaa`), or the next or previous of its class (`abcd`,
//!    `4321`).
//! 3. A stretch of three or more characters seen before in the string is
//!    worth [`REPEAT_BITS`] as a whole, not its characters (`abcabcabc`,
//!    `token-token-token`).
//! 4. A word of [`COMMON_WORDS`] (a few hundred frequent English words and
//!    the words secrets get named after: `secret`, `token`, `internal`,
//!    `production`, `qwerty`, …), in any case, is worth [`WORD_BITS`] as a
//!    whole, about what picking it from the list takes.
//! 5. In a word-shaped run of letters (all of one case, or capitalised, as
//!    `Horse` in `CorrectHorse`), the letters from the fourth on are worth
//!    at most [`TEXT_BITS`], about what a letter of English text carries:
//!    long words the list lacks count for little too. Random characters
//!    make such runs as well, but short and few.
//!
//! Measured on 10,000 draws of each: 32 random bytes in base64url
//! (`auth-server secret`) or padded base64 (`openssl rand -base64 32`)
//! estimate at 149 bits at the least, in hex (`openssl rand -hex 32`) at
//! 154, so a generated secret is not refused by bad luck; 16 random bytes
//! (128 bits at best) never pass. Its limits: a phrase of six or more uncommon words can pass, as
//! can anything a person types with care to look random. Generate secrets.
//! Only the first [`MAX_EXAMINED`] characters are read: more could only add
//! bits, and the work stays small.

/// The least production accepts for a shared secret.
pub const MIN_SECRET_BITS: f64 = 128.0;
/// What a stretch seen before costs a guesser: where it was and how long.
pub const REPEAT_BITS: f64 = 8.0;
/// What a word of [`COMMON_WORDS`] costs a guesser: which one.
pub const WORD_BITS: f64 = 8.0;
/// What a letter of text carries, at most.
pub const TEXT_BITS: f64 = 2.0;
/// Characters examined at most.
pub const MAX_EXAMINED: usize = 1024;
/// The shortest stretch counted as a repeat.
const MIN_REPEAT: usize = 3;
/// Letters of a word-shaped run worth their full value: the rest of the
/// run is worth [`TEXT_BITS`] each.
const FREE_LETTERS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Lower,
    Upper,
    Digit,
    Symbol,
    Other,
}

impl Class {
    fn of(c: char) -> Self {
        match c {
            'a'..='z' => Self::Lower,
            'A'..='Z' => Self::Upper,
            '0'..='9' => Self::Digit,
            c if c.is_ascii() => Self::Symbol,
            _ => Self::Other,
        }
    }

    fn size(self) -> u32 {
        match self {
            Self::Lower | Self::Upper => 26,
            Self::Digit => 10,
            Self::Symbol => 33,
            Self::Other => 100,
        }
    }
}

/// The estimate, in bits: see the module's documentation.
pub fn estimated_bits(secret: &str) -> f64 {
    let chars: Vec<char> = secret.chars().take(MAX_EXAMINED).collect();
    if chars.is_empty() {
        return 0.0;
    }
    let per_char = alphabet_bits(&chars).min(shannon_bits(&chars));
    let text = text_letters(&chars);
    let lower: Vec<char> = chars.iter().map(char::to_ascii_lowercase).collect();
    let words: Vec<&[u8]> = COMMON_WORDS.split_whitespace().map(str::as_bytes).collect();
    let mut bits = 0.0;
    let mut i = 0;
    while i < chars.len() {
        if let Some(word) = common_word_at(&lower, i, &words) {
            bits += WORD_BITS;
            i += word;
            continue;
        }
        let repeated = longest_earlier_match(&chars, i);
        if repeated >= MIN_REPEAT {
            bits += REPEAT_BITS;
            i += repeated;
            continue;
        }
        if i > 0 && follows(chars[i - 1], chars[i]) {
            i += 1;
            continue;
        }
        bits += if text[i] {
            per_char.min(TEXT_BITS)
        } else {
            per_char
        };
        i += 1;
    }
    bits
}

/// Whether `secret` carries at least [`MIN_SECRET_BITS`]; otherwise the
/// estimate, rounded down.
pub fn check(secret: &str) -> Result<(), u32> {
    let bits = estimated_bits(secret);
    if bits >= MIN_SECRET_BITS {
        Ok(())
    } else {
        Err(bits as u32)
    }
}

/// `log2` of the alphabet the classes present span together.
fn alphabet_bits(chars: &[char]) -> f64 {
    let mut classes: Vec<Class> = chars.iter().map(|c| Class::of(*c)).collect();
    classes.sort_by_key(|c| *c as u8);
    classes.dedup();
    f64::from(classes.iter().map(|c| c.size()).sum::<u32>()).log2()
}

/// The Shannon entropy of the string's own character frequencies, per
/// character.
fn shannon_bits(chars: &[char]) -> f64 {
    let mut sorted = chars.to_vec();
    sorted.sort_unstable();
    let total = chars.len() as f64;
    sorted
        .chunk_by(|a, b| a == b)
        .map(|same| {
            let p = same.len() as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// The same again, or the next or previous character of the same class.
fn follows(previous: char, c: char) -> bool {
    let (p, n) = (previous as u32, c as u32);
    c == previous || (Class::of(previous) == Class::of(c) && (n == p + 1 || p == n + 1))
}

/// The longest stretch starting at `at` that also starts somewhere before
/// it (overlapping allowed, as in `abababab`).
fn longest_earlier_match(chars: &[char], at: usize) -> usize {
    (0..at)
        .map(|start| {
            chars[start..]
                .iter()
                .zip(&chars[at..])
                .take_while(|(a, b)| a == b)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// The letters of word-shaped runs past the first [`FREE_LETTERS`]: a run
/// is ASCII letters all lower case, all upper case, or one capital then
/// lower case (a capital after a lower-case letter starts the next word, as
/// in `CorrectHorse`).
fn text_letters(chars: &[char]) -> Vec<bool> {
    let mut marked = vec![false; chars.len()];
    let mut start = 0;
    while start < chars.len() {
        if !chars[start].is_ascii_alphabetic() {
            start += 1;
            continue;
        }
        let all_upper = chars[start].is_ascii_uppercase()
            && chars.get(start + 1).is_some_and(char::is_ascii_uppercase);
        let mut end = start + 1;
        while let Some(c) = chars.get(end) {
            let continues = if all_upper {
                c.is_ascii_uppercase()
            } else {
                c.is_ascii_lowercase()
            };
            if !continues {
                break;
            }
            end += 1;
        }
        if end - start > FREE_LETTERS {
            marked[start + FREE_LETTERS..end]
                .iter_mut()
                .for_each(|m| *m = true);
        }
        start = end;
    }
    marked
}

/// The length of the longest of `words` (of [`COMMON_WORDS`]) at `at`;
/// `lower` is the string in lower case.
fn common_word_at(lower: &[char], at: usize, words: &[&[u8]]) -> Option<usize> {
    words
        .iter()
        .filter(|word| {
            word.len() <= lower.len() - at
                && word
                    .iter()
                    .zip(&lower[at..])
                    .all(|(w, c)| char::from(*w) == *c)
        })
        .map(|word| word.len())
        .max()
}

/// Frequent English words of three letters or more, and the words shared
/// secrets get named after.
pub const COMMON_WORDS: &str = "
about access admin administrator after again all also and any anything api app
application are auth authentication authorization autumn azerty back baseball battery
because been before being below between both boy but call came can change changeme
cluster come company compose config configuration correct could data database day
default dev development did docker does down dragon each even every everything example
external feed first football for found from get give going good great guard had hand has
have hello help her here high him his home horse host house how iloveyou internal into
its just key keys kind know kubernetes last left let letmein life like little local
localhost login logout long look made main make man many master monkey more most move
much must name need never new next not nothing now number often old one only open other
our out over part pass passwd password people place point postgres princess private prod
production project public put qwerty random resource revocation right root safe same say
secret secure security see seem server service services session sessions shadow share
shared she should show site small some something sound spring stage staging staple still
story string strong study such summer sunshine super sync system systems take team test
testing than that the their them there these they thing think this those three through
time together token too trustno two under until use user users value very want was water
way web welcome well were what when where which while who will winter with word world
would write year you young your
";

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(secret: &str) -> bool {
        check(secret).is_err()
    }

    #[test]
    fn length_alone_is_not_entropy() {
        for weak in [
            "",
            &"s".repeat(40),
            &"s".repeat(5000),
            "0123456789abcdef0123456789abcdef",
            "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "9876543210zyxwvutsrqponmlkjihgfedcba",
            &"ab".repeat(40),
            &"token-".repeat(10),
            &"Xk9#".repeat(20),
            "0101010101010101010101010101010101010101",
            "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbcccccccccccccccc",
        ] {
            assert!(refused(weak), "{weak:?}: {}", estimated_bits(weak));
        }
    }

    #[test]
    fn words_and_keyboard_rows_are_refused() {
        for weak in [
            "correcthorsebatterystaplecorrecthorse",
            "CorrectHorseBatteryStapleUnderTheBridge",
            "the-internal-api-token-for-production-use",
            "INTERNAL_API_TOKEN_FOR_PRODUCTION_DEPLOYMENT",
            "supersecretpasswordthatnobodywillever",
            "qwertyuiopasdfghjklzxcvbnm1234567890",
            "development-internal-token-not-for-production",
            "Password1!Password1!Password1!Password1!",
            "my-api-token-2024-for-the-cluster-xyz",
            "internal-api-token-for-our-production-cluster",
            "purpleelephantdancingquietlytonightriverbank",
        ] {
            assert!(refused(weak), "{weak:?}: {}", estimated_bits(weak));
        }
    }

    /// xorshift64*: bytes as random as a test needs, with no dependency.
    fn random_bytes(seed: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed >> 12;
                *seed ^= *seed << 25;
                *seed ^= *seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    fn encode(bytes: &[u8], alphabet: &[u8], bits_per_char: u32) -> String {
        let mut out = String::new();
        let (mut buffer, mut held) = (0u32, 0u32);
        for byte in bytes {
            buffer = (buffer << 8) | u32::from(*byte);
            held += 8;
            while held >= bits_per_char {
                held -= bits_per_char;
                out.push(
                    alphabet[((buffer >> held) & ((1 << bits_per_char) - 1)) as usize] as char,
                );
            }
        }
        if held > 0 {
            out.push(
                alphabet[((buffer << (bits_per_char - held)) & ((1 << bits_per_char) - 1)) as usize]
                    as char,
            );
        }
        out
    }

    #[test]
    fn thirty_two_random_bytes_always_pass() {
        const BASE64URL: &[u8] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const HEX: &[u8] = b"0123456789abcdef";
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let (mut lowest_b64, mut lowest_hex) = (f64::MAX, f64::MAX);
        // Few draws here, as tests run unoptimised; the module's figures
        // are from 10,000 (`--release`).
        for _ in 0..300 {
            let bytes = random_bytes(&mut seed, 32);
            // `auth-server secret`, and `openssl rand -base64 32` (padded).
            let url = encode(&bytes, BASE64URL, 6);
            assert_eq!(url.len(), 43);
            let padded = format!("{}=", encode(&bytes, BASE64, 6));
            // `openssl rand -hex 32`.
            let hex = encode(&bytes, HEX, 4);
            for secret in [&url, &padded] {
                lowest_b64 = lowest_b64.min(estimated_bits(secret));
                assert!(
                    check(secret).is_ok(),
                    "{secret}: {}",
                    estimated_bits(secret)
                );
            }
            lowest_hex = lowest_hex.min(estimated_bits(&hex));
            assert!(check(&hex).is_ok(), "{hex}: {}", estimated_bits(&hex));
        }
        // A margin, so no generated secret is ever refused by bad luck.
        assert!(
            lowest_b64 > 140.0 && lowest_hex > 140.0,
            "{lowest_b64} {lowest_hex}"
        );
    }

    #[test]
    fn sixteen_random_bytes_are_not_enough() {
        let mut seed = 42;
        let hex: String = random_bytes(&mut seed, 16)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(
            check(&hex).is_err(),
            "{hex}: 128 bits at best, estimated lower"
        );
    }

    #[test]
    fn the_estimate_rises_with_unpredictable_characters() {
        let short = estimated_bits("k1Z9q0mJ7dQ2");
        let long = estimated_bits("k1Z9q0mJ7dQ2vB+oX8sRtY4u");
        assert!(short < long && long < MIN_SECRET_BITS, "{short} {long}");
    }

    #[test]
    fn long_runs_of_letters_are_text_past_their_third_letter() {
        let marked = |s: &str| text_letters(&s.chars().collect::<Vec<_>>());
        assert_eq!(
            marked("CorrectHorse"),
            [
                false, false, false, true, true, true, true, false, false, false, true, true
            ]
        );
        assert_eq!(marked("ABCDE"), [false, false, false, true, true]);
        assert_eq!(marked("aBcDeF"), vec![false; 6], "case flips are not words");
        assert_eq!(
            marked("ab1cdefg"),
            [false, false, false, false, false, false, true, true]
        );
    }

    #[test]
    fn common_words_are_found_in_any_case() {
        let lower: Vec<char> = "xxsecrettoken".chars().collect();
        let words: Vec<&[u8]> = COMMON_WORDS.split_whitespace().map(str::as_bytes).collect();
        assert_eq!(common_word_at(&lower, 2, &words), Some(6));
        assert_eq!(common_word_at(&lower, 8, &words), Some(5));
        assert_eq!(common_word_at(&lower, 0, &words), None);
        assert!(estimated_bits("SECRET") < estimated_bits("XQZVBK"));
    }
}
