import Testing
@testable import SanlockCleanup

private let confPath = "/etc/libvirt/qemu-sanlock.conf"

private typealias Entry = VirConf.Entry

/// A text and the statements it must parse to.
struct ParseCase: Sendable, CustomTestStringConvertible {
    let label: String
    let text: String
    let entries: [VirConf.Entry]

    init(_ label: String, _ text: String, _ entries: [VirConf.Entry]) {
        self.label = label
        self.text = text
        self.entries = entries
    }

    var testDescription: String { label }
}

/// A text and the error it must fail with.
struct ErrorCase: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let line: Int
    let message: String

    init(_ label: String, _ text: String, line: Int, _ message: String) {
        self.init(label, bytes: Array(text.utf8), line: line, message)
    }

    init(_ label: String, bytes: [UInt8], line: Int, _ message: String) {
        self.label = label
        self.bytes = bytes
        self.line = line
        self.message = message
    }

    var testDescription: String { label }
}

private func entry(_ name: String, _ value: VirConfValue, line: Int) -> Entry {
    Entry(name: name, value: value, line: line)
}

private func int(_ value: Int64) -> VirConfValue { .integer(value) }
private func str(_ value: String) -> VirConfValue { .string(value) }

@Suite struct VirConfSyntaxTests {
    static let validCases: [ParseCase] = [
        // Files with no statement.
        ParseCase("empty file", "", []),
        ParseCase("only blank lines and blanks", "\n  \n\t\n", []),
        ParseCase("only comments", "# one\n#two\n   # indented\n", []),
        ParseCase("comment without final newline", "# last", []),

        // Statements and separators.
        ParseCase("no final newline", "a = 1", [entry("a", int(1), line: 1)]),
        ParseCase("no blanks around =", "a=1\n", [entry("a", int(1), line: 1)]),
        ParseCase("tabs as blanks", "\ta\t=\t1\t\n", [entry("a", int(1), line: 1)]),
        ParseCase("semicolon separator", "a=1;b=2", [entry("a", int(1), line: 1), entry("b", int(2), line: 1)]),
        ParseCase("semicolon with blanks and final semicolon", "a = 1 ; b = 2 ;\n",
                  [entry("a", int(1), line: 1), entry("b", int(2), line: 1)]),
        ParseCase("semicolon then newline", "a = 1;\nb = 2\n", [entry("a", int(1), line: 1), entry("b", int(2), line: 2)]),
        ParseCase("blank lines between statements", "\n\n  a = 1\n\n\nb = 2\n\n",
                  [entry("a", int(1), line: 3), entry("b", int(2), line: 6)]),

        // Comments after a value.
        ParseCase("comment after integer", "a = 1 # one\nb = 2\n", [entry("a", int(1), line: 1), entry("b", int(2), line: 2)]),
        ParseCase("comment right after value", "a = 1#one\n", [entry("a", int(1), line: 1)]),
        ParseCase("comment after string", "a = \"x\" # c\n", [entry("a", str("x"), line: 1)]),
        ParseCase("comment after list", "a = [1] # c\n", [entry("a", .list([int(1)]), line: 1)]),
        ParseCase("comment hides a later statement", "a = 1 # ; b = 2\n", [entry("a", int(1), line: 1)]),
        ParseCase("comment after semicolon", "a = 1; # c\nb = 2\n", [entry("a", int(1), line: 1), entry("b", int(2), line: 2)]),

        // Names.
        ParseCase("name with digits and underscores", "a_b9_ = 1\n", [entry("a_b9_", int(1), line: 1)]),
        ParseCase("upper-case name", "HostID = 1\n", [entry("HostID", int(1), line: 1)]),

        // Integers.
        ParseCase("zero", "a = 0", [entry("a", int(0), line: 1)]),
        ParseCase("explicit plus", "a = +5", [entry("a", int(5), line: 1)]),
        ParseCase("negative", "a = -5", [entry("a", int(-5), line: 1)]),
        ParseCase("leading zeros are decimal", "a = 010", [entry("a", int(10), line: 1)]),
        ParseCase("largest integer", "a = 9223372036854775807", [entry("a", int(.max), line: 1)]),
        ParseCase("smallest integer", "a = -9223372036854775808", [entry("a", int(.min), line: 1)]),

        // Strings.
        ParseCase("double-quoted", "a = \"/var/lib/libvirt/sanlock\"", [entry("a", str("/var/lib/libvirt/sanlock"), line: 1)]),
        ParseCase("single-quoted", "a = '/var/lib/libvirt/sanlock'", [entry("a", str("/var/lib/libvirt/sanlock"), line: 1)]),
        ParseCase("empty double-quoted", "a = \"\"\nb = 1", [entry("a", str(""), line: 1), entry("b", int(1), line: 2)]),
        ParseCase("empty single-quoted", "a = ''", [entry("a", str(""), line: 1)]),
        ParseCase("single quote inside double quotes", "a = \"it's\"", [entry("a", str("it's"), line: 1)]),
        ParseCase("double quote inside single quotes", "a = 'say \"hi\"'", [entry("a", str("say \"hi\""), line: 1)]),
        ParseCase("no escapes: backslash kept", "a = \"a\\nb\\\\\"", [entry("a", str("a\\nb\\\\"), line: 1)]),
        ParseCase("hash inside a string", "a = \"x # y\" # z", [entry("a", str("x # y"), line: 1)]),
        ParseCase("semicolon inside a string", "a = 'x; b = 2'", [entry("a", str("x; b = 2"), line: 1)]),
        ParseCase("blanks kept inside a string", "a = \"  x  \"", [entry("a", str("  x  "), line: 1)]),
        ParseCase("UTF-8 inside a string", "a = \"/srv/räume/租\"", [entry("a", str("/srv/räume/租"), line: 1)]),
        ParseCase("path with colon and spaces", "a = \"/srv/lease dir:1/x\"", [entry("a", str("/srv/lease dir:1/x"), line: 1)]),

        // Triple-quoted strings.
        ParseCase("triple-quoted on one line", "a = \"\"\"x\"\"\"", [entry("a", str("x"), line: 1)]),
        ParseCase("triple-quoted over lines, lines counted", "a = \"\"\"one\ntwo\n\"\"\"\nb = 1\n",
                  [entry("a", str("one\ntwo\n"), line: 1), entry("b", int(1), line: 4)]),
        ParseCase("triple-quoted holding quotes and hash", "a = \"\"\"say \"hi\" 'x' # y\"\"\"",
                  [entry("a", str("say \"hi\" 'x' # y"), line: 1)]),
        ParseCase("empty triple-quoted at end of file", "a = \"\"\"\"\"\"", [entry("a", str(""), line: 1)]),
        ParseCase("triple-quoted keeps CRLF", "a = \"\"\"x\r\ny\"\"\"\r\nb = 2\r\n",
                  [entry("a", str("x\r\ny"), line: 1), entry("b", int(2), line: 3)]),

        // Lists.
        ParseCase("empty list", "a = []", [entry("a", .list([]), line: 1)]),
        ParseCase("empty list with blanks", "a = [ \t ]", [entry("a", .list([]), line: 1)]),
        ParseCase("list of integers", "a = [1, -2, +3]", [entry("a", .list([int(1), int(-2), int(3)]), line: 1)]),
        ParseCase("trailing comma", "a = [1, 2, ]", [entry("a", .list([int(1), int(2)]), line: 1)]),
        ParseCase("no blanks", "a=[1,'x',\"y\"]", [entry("a", .list([int(1), str("x"), str("y")]), line: 1)]),
        ParseCase("nested lists", "a = [1, [2, [3]], []]",
                  [entry("a", .list([int(1), .list([int(2), .list([int(3)])]), .list([])]), line: 1)]),
        ParseCase("list over lines, lines counted", "a = [\n  \"x\",\n  \"y\",\n]\nb = 2\n",
                  [entry("a", .list([str("x"), str("y")]), line: 1), entry("b", int(2), line: 5)]),
        ParseCase("newline before comma", "a = [1\n, 2\n]\n", [entry("a", .list([int(1), int(2)]), line: 1)]),
        ParseCase("triple-quoted string in a list", "a = [\"\"\"x\ny\"\"\", 1]\nb = 2",
                  [entry("a", .list([str("x\ny"), int(1)]), line: 1), entry("b", int(2), line: 3)]),

        // Line endings.
        ParseCase("CRLF line endings", "# c\r\na = 1\r\nb = \"x\"\r\n\r\nc = [1,\r\n 2]\r\n",
                  [entry("a", int(1), line: 2), entry("b", str("x"), line: 3), entry("c", .list([int(1), int(2)]), line: 5)]),
        // libvirt ends a line at a lone CR too, but counts lines by LF only.
        ParseCase("lone CR separates statements without counting lines", "a = 1\rb = 2\r",
                  [entry("a", int(1), line: 1), entry("b", int(2), line: 1)]),

        // Repetitions are kept; lookups see the first.
        ParseCase("repeated name", "a = 1\na = \"two\"\n", [entry("a", int(1), line: 1), entry("a", str("two"), line: 2)]),
    ]

    @Test(arguments: validCases)
    func parses(_ testCase: ParseCase) throws {
        let conf = try VirConf.parse(testCase.text, path: confPath)
        #expect(conf.entries == testCase.entries)
        #expect(conf.path == confPath)
    }

    static let errorCases: [ErrorCase] = [
        // Names.
        ErrorCase("name starting with underscore", "_a = 1", line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found '_'"),
        ErrorCase("name starting with a digit", "1a = 1", line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found '1'"),
        ErrorCase("no name", "= 1", line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found '='"),
        ErrorCase("bad name on a later line", "a = 1\n\n[x] = 1\n", line: 3,
                  "expected a setting name (a letter, then letters, digits or '_'), found '['"),
        ErrorCase("empty statement between semicolons", "a = 1;;", line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found ';'"),
        ErrorCase("non-ASCII name", "a = 1\né = 2\n", line: 2,
                  "expected a setting name (a letter, then letters, digits or '_'), found 'é' (U+00E9)"),
        ErrorCase("invalid UTF-8 where a name should be", bytes: [0xFF, 0x3D, 0x31], line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found byte 0xFF"),
        // libvirt does not skip a byte order mark: it fails with "expecting a name".
        ErrorCase("UTF-8 byte order mark", "\u{FEFF}a = 1\n", line: 1,
                  "expected a setting name (a letter, then letters, digits or '_'), found a UTF-8 byte order mark (libvirt rejects it too; save the file without it)"),

        // Assignment.
        ErrorCase("name alone", "a", line: 1, "expected '=' after 'a', found the end of the file"),
        ErrorCase("name then value", "a 1", line: 1, "expected '=' after 'a', found '1'"),
        ErrorCase("= on the next line", "a\n= 1", line: 1, "expected '=' after 'a', found the end of the line"),
        ErrorCase("dash in a name", "x = 1\nhost-id = 1", line: 2, "expected '=' after 'host', found '-'"),
        ErrorCase("space in a name", "auto disk = 1", line: 1, "expected '=' after 'auto', found 'd'"),
        ErrorCase("colon instead of =", "a: 1", line: 1, "expected '=' after 'a', found ':'"),

        // Values.
        ErrorCase("nothing after = at end of file", "a =", line: 1, "expected a value after '='"),
        ErrorCase("nothing after = at end of line", "x = 1\na =  \nb = 1\n", line: 2, "expected a value after '='"),
        ErrorCase("nothing after = before CRLF", "a =\r\n", line: 1, "expected a value after '='"),
        ErrorCase("comment instead of value", "a = # c", line: 1,
                  "expected a value after '=' (a number, a quoted string or a list), found '#'"),
        ErrorCase("bare word", "a = yes", line: 1,
                  "expected a value after '=' (a number, a quoted string or a list), found 'y'"),
        ErrorCase("bare path", "a = /var/lib", line: 1,
                  "expected a value after '=' (a number, a quoted string or a list), found '/'"),
        ErrorCase("semicolon instead of value", "a = ;", line: 1,
                  "expected a value after '=' (a number, a quoted string or a list), found ';'"),

        // Garbage after a value.
        ErrorCase("two integers", "a = 1 2", line: 1, "expected ';' or a new line after the value of 'a', found '2'"),
        ErrorCase("letters after digits", "a = 12abc", line: 1, "expected ';' or a new line after the value of 'a', found 'a'"),
        ErrorCase("decimal point", "a = 1.5", line: 1, "expected ';' or a new line after the value of 'a', found '.'"),
        ErrorCase("hexadecimal", "a = 0x10", line: 1, "expected ';' or a new line after the value of 'a', found 'x'"),
        ErrorCase("word after string", "a = \"x\" y", line: 1, "expected ';' or a new line after the value of 'a', found 'y'"),
        ErrorCase("string after string", "a = 'x''y'", line: 1, "expected ';' or a new line after the value of 'a', found '''"),
        ErrorCase("garbage after list", "a = [1] ]", line: 1, "expected ';' or a new line after the value of 'a', found ']'"),
        ErrorCase("garbage after multi-line string", "a = \"\"\"x\ny\"\"\" z", line: 2,
                  "expected ';' or a new line after the value of 'a', found 'z'"),
        ErrorCase("garbage after multi-line list", "a = [\n1\n] z", line: 3,
                  "expected ';' or a new line after the value of 'a', found 'z'"),
        ErrorCase("garbage on a CRLF line", "a = 1\r\nb = 2 3\r\n", line: 2,
                  "expected ';' or a new line after the value of 'b', found '3'"),

        // Integers.
        ErrorCase("minus alone", "a = -", line: 1, "expected digits after '-', found the end of the file"),
        ErrorCase("plus then space", "a = + 1", line: 1, "expected digits after '+', found a space"),
        ErrorCase("minus then letter", "a = -x", line: 1, "expected digits after '-', found 'x'"),
        ErrorCase("just above Int64.max", "a = 9223372036854775808", line: 1,
                  "integer 9223372036854775808 is out of range -9223372036854775808...9223372036854775807"),
        ErrorCase("just below Int64.min", "a = -9223372036854775809", line: 1,
                  "integer -9223372036854775809 is out of range -9223372036854775808...9223372036854775807"),
        ErrorCase("UInt64.max", "a = 18446744073709551615", line: 1,
                  "integer 18446744073709551615 is out of range -9223372036854775808...9223372036854775807"),
        // 1844674407370955161 × 10 fits in 64 bits; adding the last 6 does not.
        ErrorCase("2^64, overflowing on the last addition", "a = 18446744073709551616", line: 1,
                  "integer 18446744073709551616 is out of range -9223372036854775808...9223372036854775807"),
        ErrorCase("more digits than 64 bits hold", "a = 1\nb = +123456789012345678901234567890", line: 2,
                  "integer +123456789012345678901234567890 is out of range -9223372036854775808...9223372036854775807"),
        ErrorCase("overflow inside a list", "a = [\n1,\n99999999999999999999]", line: 3,
                  "integer 99999999999999999999 is out of range -9223372036854775808...9223372036854775807"),

        // Single-line strings.
        ErrorCase("unterminated double quote at end of file", "a = \"abc", line: 1,
                  "unterminated string: no closing \" before the end of the line"),
        ErrorCase("unterminated single quote at end of line", "a = 'abc\nb = 1'\n", line: 1,
                  "unterminated string: no closing ' before the end of the line"),
        ErrorCase("unterminated string before CRLF", "x = 1\r\na = \"abc\r\n\"\r\n", line: 2,
                  "unterminated string: no closing \" before the end of the line"),
        ErrorCase("mismatched quotes", "a = \"abc'", line: 1,
                  "unterminated string: no closing \" before the end of the line"),
        ErrorCase("invalid UTF-8 in a string", bytes: Array("x = 1\na = \"".utf8) + [0xC3, 0x28] + Array("\"\n".utf8), line: 2,
                  "string is not valid UTF-8"),

        // Triple-quoted strings: reported where they open.
        ErrorCase("unterminated triple quote", "x = 1\na = \"\"\"abc\n\ndef\n", line: 2,
                  "unterminated string: no closing \"\"\" before the end of the file"),
        ErrorCase("triple quote closed by only two quotes", "a = \"\"\"abc\"\"", line: 1,
                  "unterminated string: no closing \"\"\" before the end of the file"),
        ErrorCase("triple quote alone", "a = \"\"\"", line: 1,
                  "unterminated string: no closing \"\"\" before the end of the file"),
        ErrorCase("invalid UTF-8 in a triple-quoted string",
                  bytes: Array("a = \"\"\"\n".utf8) + [0xFF] + Array("\"\"\"".utf8), line: 1, "string is not valid UTF-8"),

        // Lists.
        ErrorCase("unclosed list at end of file", "a = [1, 2", line: 1,
                  "unterminated list: no closing ']' before the end of the file"),
        ErrorCase("unclosed list after comma", "x = 1\na = [\n1,\n", line: 2,
                  "unterminated list: no closing ']' before the end of the file"),
        ErrorCase("bracket alone", "a = [", line: 1, "unterminated list: no closing ']' before the end of the file"),
        ErrorCase("unclosed nested list reported at the inner bracket", "a = [1,\n[2", line: 2,
                  "unterminated list: no closing ']' before the end of the file"),
        ErrorCase("missing comma", "a = [1 2]", line: 1, "expected ',' or ']' in the list, found '2'"),
        ErrorCase("semicolon as list separator", "a = [1; 2]", line: 1, "expected ',' or ']' in the list, found ';'"),
        ErrorCase("missing comma on a later line", "a = [1,\n2,\n3 4]", line: 3, "expected ',' or ']' in the list, found '4'"),
        ErrorCase("double comma", "a = [1,,2]", line: 1,
                  "expected a value in the list (a number, a quoted string or a list), found ','"),
        ErrorCase("comma alone", "a = [,]", line: 1,
                  "expected a value in the list (a number, a quoted string or a list), found ','"),
        ErrorCase("bare word in a list", "a = [x]", line: 1,
                  "expected a value in the list (a number, a quoted string or a list), found 'x'"),
        // libvirt skips blanks and newlines inside a list, never comments.
        ErrorCase("comment after a comma in a list", "a = [1, # one\n 2]", line: 1,
                  "comments are not allowed inside a list (libvirt rejects them too)"),
        ErrorCase("comment line inside a list", "a = [\n  1,\n  # two\n  2]", line: 3,
                  "comments are not allowed inside a list (libvirt rejects them too)"),
        ErrorCase("comment after the last item", "a = [1 # one\n]", line: 1,
                  "comments are not allowed inside a list (libvirt rejects them too)"),
        ErrorCase("comment right after the bracket", "a = [ # c\n1]", line: 1,
                  "comments are not allowed inside a list (libvirt rejects them too)"),
    ]

    @Test(arguments: errorCases)
    func rejects(_ testCase: ErrorCase) {
        #expect(throws: VirConfError(path: confPath, line: testCase.line, message: testCase.message)) {
            try VirConf.parse(bytes: testCase.bytes, path: confPath)
        }
    }

    @Test func parseOfStringMatchesParseOfItsBytes() throws {
        let text = "a = \"/srv/räume\"\nb = [1, 'x']\n"
        let fromString = try VirConf.parse(text, path: confPath)
        let fromBytes = try VirConf.parse(bytes: Array(text.utf8), path: confPath)
        #expect(fromString.entries == fromBytes.entries)
        #expect(fromString.entries.count == 2)
    }

    @Test("List nesting is bounded: a file of '[' cannot exhaust the stack")
    func deepListsAreRefused() throws {
        let deepest = String(repeating: "[", count: VirConf.maximumListDepth) + String(repeating: "]", count: VirConf.maximumListDepth)
        #expect(try VirConf.parse("a = \(deepest)\n", path: confPath).entries.count == 1)
        // Before the bound, 200,000 levels crashed the parser (stack overflow).
        for depth in [VirConf.maximumListDepth + 1, 200_000] {
            #expect(throws: VirConfError(path: confPath, line: 1, message: "lists nest deeper than \(VirConf.maximumListDepth) levels")) {
                try VirConf.parse(bytes: Array("a = ".utf8) + [UInt8](repeating: UInt8(ascii: "["), count: depth), path: confPath)
            }
        }
    }

    @Test func invalidUTF8OutsideStringsIsHarmless() throws {
        // libvirt reads bytes: a Latin-1 comment must not break the file.
        let bytes = Array("# caf".utf8) + [0xE9] + Array("\nhost_id = 3\n".utf8)
        let conf = try VirConf.parse(bytes: bytes, path: confPath)
        #expect(conf.entries == [entry("host_id", int(3), line: 2)])
    }
}

@Suite struct VirConfLookupTests {
    @Test func firstOccurrenceWins() throws {
        let conf = try VirConf.parse("a = 1\nb = 'x'\na = 2\na = 'three'\n", path: confPath)
        #expect(conf.value(for: "a") == .integer(1))
        #expect(conf.line(of: "a") == 1)
        #expect(conf.entry(for: "a") == entry("a", int(1), line: 1))
        #expect(conf.entries.count == 4)
        #expect(conf.entries.map(\.name) == ["a", "b", "a", "a"])
    }

    @Test func laterRepetitionOfADifferentTypeIsIgnored() throws {
        let conf = try VirConf.parse("host_id = 'one'\nhost_id = 1\n", path: confPath)
        #expect(conf.value(for: "host_id") == .string("one"))
        #expect(conf.line(of: "host_id") == 1)
    }

    @Test func missingKey() throws {
        let conf = try VirConf.parse("a = 1\n", path: confPath)
        #expect(conf.value(for: "b") == nil)
        #expect(conf.line(of: "b") == nil)
        #expect(conf.entry(for: "b") == nil)
    }

    @Test func namesAreCaseSensitive() throws {
        let conf = try VirConf.parse("Host_ID = 1\n", path: confPath)
        #expect(conf.value(for: "host_id") == nil)
        #expect(conf.value(for: "Host_ID") == .integer(1))
    }

    @Test func lineOfEachKey() throws {
        let text = """
            # header

            auto_disk_leases = 1 # on
            disk_lease_dir = "/var/lib/libvirt/sanlock"; host_id = 7
            user = [
              "a",
            ]
            group = 'kvm'
            """
        let conf = try VirConf.parse(text, path: confPath)
        #expect(conf.line(of: "auto_disk_leases") == 3)
        #expect(conf.line(of: "disk_lease_dir") == 4)
        #expect(conf.line(of: "host_id") == 4)
        #expect(conf.line(of: "user") == 5)
        #expect(conf.line(of: "group") == 8)
        #expect(conf.value(for: "user") == .list([.string("a")]))
    }
}

@Suite struct VirConfErrorTests {
    @Test func descriptionIsFileLineProblem() {
        let error = VirConfError(path: confPath, line: 3, message: "expected a value after '='")
        #expect(error.description == "/etc/libvirt/qemu-sanlock.conf:3: expected a value after '='")
    }

    @Test func errorCarriesThePathAsGiven() {
        let path = "/tmp/lease dir:1/qemu-sanlock.conf"
        #expect(throws: VirConfError(path: path, line: 2, message: "expected a value after '='")) {
            try VirConf.parse("a = 1\nb =\n", path: path)
        }
        let error = VirConfError(path: path, line: 2, message: "expected a value after '='")
        #expect(error.description == "/tmp/lease dir:1/qemu-sanlock.conf:2: expected a value after '='")
    }
}
