//! Generation 7's markup contexts: where the next byte stands in XML or HTML (in a tag's
//! name, an end tag's name, an attribute's name or value, or between tags) and which
//! elements are open around it.
//!
//! Markup's structure is a stack: an end tag repeats the name of the innermost open
//! element, and what comes after a tag depends on the element it is in and on the
//! element that closed last at that level (its previous sibling). Byte contexts see
//! that only as far as their order reaches: in `<Cvar><string val="e2"/></Cvar>` the
//! `C` of the end tag is 20 bytes from the `<Cvar>` that says so. The state machine is
//! paq8px's XMLModel's in spirit, smaller, with a real stack of open elements.
//!
//! Nothing here trusts the input to be well-formed: an end tag pops one element
//! whatever its name, and a `<` that no name follows is content. The contexts are on
//! while a tag ended lately ([`MARKUP_SPAN`]) on text, absent otherwise.
//!
//! Context model alone, `fast` (`bytes_bench`): tuning set (21 files) mean −0.23% (the
//! first 200 kB of silesia xml −4.1%, cp.html −0.28%, fields.c −0.14%, sum −0.13%;
//! paper2 and osdb +0.01%); held out: 200 kB of silesia xml at 3 MB 0.1281 → 0.1082
//! bits per byte (−15.5%), news −0.14%, progl −0.15%; nci +0.12% (its `> <NSC>` field
//! headers open elements that never close), paper5 +0.08%; no change on binaries. Per
//! byte against paq8px -8L on that xml (docs/results/heldout/gap.md): the gap fell from
//! 6,269 to 2,082 bits; end tags' names now cost less than paq8px's (948 against 1,521
//! bits), and 93% of what is left is in attribute values. Tried: the content after a
//! tag hashed whole, not only its first [`CONTENT_BYTES`] (book1, whose `<P58>` marks
//! turn the contexts on, +0.04%); the contexts on all text, tags or not (tuning set
//! −0.233%, held out −0.04%, but book1 +0.05% and two more lookups per nibble on every
//! text); an attribute's value with the value the same attribute of the same tag had
//! last, in place of the element around it (xml at 3 MB 0.1086 instead of 0.1082,
//! cp.html −0.04%).

use super::hash::hash2;

/// Open elements remembered (deeper ones are counted, not named).
const DEPTH: usize = 64;

/// The contexts are on while a tag ended within this many bytes.
const MARKUP_SPAN: u64 = 4096;

/// The content after a tag that its context sees; beyond, only the word.
const CONTENT_BYTES: u32 = 16;

/// Where the next byte stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Place {
    /// Between tags (text, blanks).
    Content,
    /// Just after `<`.
    Open,
    /// In a start tag's name.
    Name,
    /// In an end tag's name (after `</`).
    EndName,
    /// In a start tag after its name, between attributes.
    Tag,
    /// In an attribute's name (or before its value).
    AttrName,
    /// In an attribute's value (between its quotes).
    Value,
    /// After the `/` of an empty-element tag (`<br/>`).
    Empty,
    /// In a declaration, comment or processing instruction (`<!`, `<?`).
    Decl,
}

/// One stream's markup state.
pub(super) struct Markup {
    place: Place,
    /// Names of the open elements (hashes), the innermost at `depth - 1`.
    stack: [u64; DEPTH],
    /// Per level, the name of the element that closed last there (the previous sibling
    /// of what comes next at that level), 0 if none yet.
    closed: [u64; DEPTH + 1],
    depth: usize,
    /// The name being read (a tag's or an end tag's).
    name: u64,
    /// The start tag being read, once its name is complete.
    tag: u64,
    /// The attribute being read: its name, its value so far, its quote, its index.
    attr: u64,
    value: u64,
    quote: u8,
    attrs: u64,
    /// The content since the last tag, hashed (0 right after a tag).
    content: u64,
    content_len: u32,
    /// Bytes since the last tag ended (saturating), u64::MAX before the first.
    since_tag: u64,
}

fn name_byte(c: u8) -> bool {
    // Bytes 1 to 3 are the capitals filter's escapes ([`crate::filter::case`]).
    c.is_ascii_alphanumeric() || matches!(c, b':' | b'_' | b'-' | b'.' | 1..=3) || c >= 128
}

fn blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

impl Markup {
    pub(super) fn new() -> Markup {
        Markup {
            place: Place::Content,
            stack: [0; DEPTH],
            closed: [0; DEPTH + 1],
            depth: 0,
            name: 0,
            tag: 0,
            attr: 0,
            value: 0,
            quote: 0,
            attrs: 0,
            content: 0,
            content_len: 0,
            since_tag: u64::MAX,
        }
    }

    /// The name of the open element `up` levels out (0: the innermost), 0 if none.
    fn open(&self, up: usize) -> u64 {
        if up < self.depth && self.depth - up <= DEPTH {
            self.stack[self.depth - up - 1]
        } else {
            0
        }
    }

    /// The previous sibling at the current level.
    fn sibling(&self) -> u64 {
        self.closed[self.depth.min(DEPTH)]
    }

    fn push(&mut self, name: u64) {
        if self.depth < DEPTH {
            self.stack[self.depth] = name;
        }
        self.depth += 1;
        self.closed[self.depth.min(DEPTH)] = 0;
    }

    fn pop(&mut self) {
        if self.depth > 0 {
            let name = self.open(0);
            self.depth -= 1;
            self.closed[self.depth.min(DEPTH)] = name;
        }
    }

    /// Content byte `c`: the content's first [`CONTENT_BYTES`] are hashed.
    fn add_content(&mut self, c: u8) {
        if self.content_len < CONTENT_BYTES {
            self.content = hash2(self.content.wrapping_add(1), c as u64);
        }
        self.content_len = self.content_len.saturating_add(1);
    }

    /// A tag, declaration or comment ended: content begins, none of it seen yet.
    fn enter_content(&mut self) {
        self.place = Place::Content;
        self.content_len = 0;
        self.content = 0;
    }

    /// A start tag ends with `>`: its element opens.
    fn start_tag_ends(&mut self) {
        self.push(self.tag);
        self.enter_content();
    }

    /// Whether the input looks like markup now: a tag ended within the last
    /// [`MARKUP_SPAN`] bytes.
    pub(super) fn active(&self) -> bool {
        self.since_tag < MARKUP_SPAN
    }

    /// Moves on past byte `c`.
    pub(super) fn update(&mut self, c: u8) {
        use Place::*;
        self.since_tag = self.since_tag.saturating_add(1);
        if c == b'>' && self.place != Content {
            self.since_tag = 0;
        }
        match self.place {
            Content => {
                if c == b'<' {
                    self.place = Open;
                } else {
                    self.add_content(c);
                }
            }
            Open => match c {
                b'/' => {
                    self.place = EndName;
                    self.name = 0;
                }
                b'!' | b'?' => self.place = Decl,
                _ if name_byte(c) => {
                    self.place = Name;
                    self.name = hash2(1, c as u64);
                }
                _ => {
                    // `a < b`: not a tag.
                    self.place = Content;
                    self.add_content(c);
                }
            },
            Name => {
                if name_byte(c) {
                    self.name = hash2(self.name, c as u64);
                } else {
                    self.tag = self.name;
                    self.attrs = 0;
                    match c {
                        b'>' => self.start_tag_ends(),
                        b'/' => self.place = Empty,
                        _ => self.place = Tag,
                    }
                }
            }
            EndName => {
                if c == b'>' {
                    self.pop();
                    self.enter_content();
                } else {
                    self.name = hash2(self.name.wrapping_add(1), c as u64);
                }
            }
            Tag | AttrName => match c {
                b'>' => self.start_tag_ends(),
                b'/' => self.place = Empty,
                b'"' | b'\'' => {
                    self.place = Value;
                    self.quote = c;
                    self.value = 0;
                }
                _ if blank(c) => self.place = Tag,
                b'=' => {}
                _ => {
                    if self.place == Tag {
                        self.attr = 0;
                        self.place = AttrName;
                    }
                    self.attr = hash2(self.attr.wrapping_add(1), c as u64);
                }
            },
            Value => {
                if c == self.quote {
                    self.place = Tag;
                    self.attrs += 1;
                } else {
                    self.value = hash2(self.value.wrapping_add(1), c as u64);
                }
            }
            Empty => {
                if c == b'>' {
                    // An empty element: it closes where it opened.
                    self.closed[self.depth.min(DEPTH)] = self.tag;
                    self.enter_content();
                } else {
                    self.place = Tag;
                }
            }
            Decl => {
                if c == b'>' {
                    self.enter_content();
                }
            }
        }
    }

    /// The two contexts for the next byte: a narrow one (where it stands, what is being
    /// read, the innermost element) and a wide one (with the element around that, or
    /// the previous sibling).
    pub(super) fn contexts(&self, word: u64) -> [u64; 2] {
        use Place::*;
        let top = self.open(0);
        let outer = self.open(1);
        let sib = self.sibling();
        let p = self.place as u64;
        // Past the first CONTENT_BYTES of content there is no narrow context.
        let (narrow, wide) = match self.place {
            Content if self.content_len >= CONTENT_BYTES => (None, hash2(hash2(word, top), sib)),
            Content => (Some(hash2(self.content, top)), hash2(hash2(word, top), sib)),
            Open => (Some(hash2(top, sib)), hash2(hash2(top, sib), outer)),
            Name => (Some(hash2(self.name, top)), hash2(hash2(self.name, top), sib)),
            EndName => (Some(hash2(self.name, top)), hash2(hash2(self.name, top), outer)),
            Tag => (Some(hash2(self.tag, self.attrs)), hash2(hash2(self.tag, self.attrs), top)),
            AttrName => (Some(hash2(self.attr, self.tag)), hash2(hash2(self.attr, self.tag), top)),
            Value => (
                Some(hash2(hash2(self.value, self.attr), self.tag)),
                hash2(hash2(hash2(self.value, self.attr), self.tag), top),
            ),
            Empty => (Some(hash2(self.tag, 0)), hash2(self.tag, top)),
            Decl => (Some(0), 0),
        };
        [narrow.map_or(super::NO_CTX, |h| hash2(121, h ^ p << 56)), hash2(122, wide ^ p << 56)]
    }
}
