import Foundation

/// A JSON document as it was decoded, with no shape of its own: the report's
/// shape is written once, in man/virt-sanlock-cleanup-report.schema.json, and
/// every report a test reads is checked against that file (`ReportSchema`).
/// Members read as the snake_case keys: `lease.ownerHostId` is
/// `owner_host_id`, nil when missing or null.
@dynamicMemberLookup
enum JSONValue: Decodable, Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
                ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    init(parsing text: String) throws {
        self = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
    }

    init(stringLiteral value: String) { self = .string(value) }
    init(integerLiteral value: Int) { self = .number(Double(value)) }
    init(booleanLiteral value: Bool) { self = .bool(value) }
    init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    subscript(dynamicMember member: String) -> JSONValue? { self[Self.snakeCase(member)] }

    subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self, let value = object[key], value != .null else { return nil }
        return value
    }

    var elements: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    var strings: [String]? {
        elements?.compactMap { if case .string(let text) = $0 { text } else { nil } }
    }

    var int: Int? {
        if case .number(let number) = self, let exact = Int(exactly: number) { return exact }
        return nil
    }

    var text: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// `ownerHostId` → `owner_host_id`.
    static func snakeCase(_ member: String) -> String {
        member.reduce(into: "") { key, character in
            if character.isUppercase { key += "_" + character.lowercased() } else { key.append(character) }
        }
    }
}

extension JSONValue {
    /// The lease entry named `name` of a report.
    func lease(_ name: String) -> JSONValue? {
        self.leases?.elements?.first { $0.name == .string(name) }
    }
}

/// The report schema, the one description of the JSON the janitor writes.
///
/// Documents are checked by a real JSON Schema validator (Python's
/// jsonschema, Draft 2020-12) in one long-lived process per test run: a new
/// Python per report cost about 0.3 s of CPU (interpreter start, jsonschema
/// import, schema check), some 150 times per suite, on a 2-core machine that
/// also runs the suite's sanlock daemons. That load made every janitor run a
/// test timed take seconds.
enum ReportSchema {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("man/virt-sanlock-cleanup-report.schema.json").path

    /// Validates documents; the result fails, with one line per error, when
    /// any does not match the schema.
    static func validate(_ documents: [String]) async throws -> CommandResult {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vsc-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var paths: [String] = []
        for (index, document) in documents.enumerated() {
            let file = directory + "/\(index).json"
            try document.write(toFile: file, atomically: true, encoding: .utf8)
            paths.append(file)
        }
        var errors: [String] = []
        for file in paths {
            errors += try await validator.errors(in: file).map { "\(file) \($0)" }
        }
        return CommandResult(status: errors.isEmpty ? 0 : 1, stdout: errors.joined(separator: "\n"), stderr: "")
    }

    private static let validator = SchemaValidator(schema: path)
}

/// One `python3` that loads the schema once, then reads a document path per
/// line on stdin and answers with a JSON array of error messages per line.
/// Requests are serialised on a queue of their own, whose thread blocks on
/// the pipe: never one of Swift Testing's few cooperative threads.
final class SchemaValidator: @unchecked Sendable {
    private static let program = """
        import json, sys
        from jsonschema import Draft202012Validator
        schema = json.load(open(sys.argv[1]))
        Draft202012Validator.check_schema(schema)
        validator = Draft202012Validator(schema)
        for line in sys.stdin:
            try:
                errors = [f"{list(error.path)} {error.message}" for error in validator.iter_errors(json.load(open(line.rstrip("\\n"))))]
            except Exception as error:
                errors = [f"cannot validate: {error!r}"]
            sys.stdout.write(json.dumps(errors) + "\\n")
            sys.stdout.flush()
        """
    private let schema: String
    private let queue = DispatchQueue(label: "schema-validator")
    private var process: Process?
    private var input: FileHandle?
    private var output: FileHandle?
    private var buffered = Data()

    init(schema: String) { self.schema = schema }

    func errors(in file: String) async throws -> [String] {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.ask(file) })
            }
        }
    }

    /// On the queue only.
    private func ask(_ file: String) throws -> [String] {
        if process?.isRunning != true { try start() }
        input!.write(Data((file + "\n").utf8))
        guard let line = readLine(),
              let errors = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String] else {
            process = nil
            throw CommandError(command: ["python3 (schema validator)", file],
                               result: CommandResult(status: 1, stdout: "", stderr: "the validator stopped answering"))
        }
        return errors
    }

    private func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Command.resolve("python3"))
        process.arguments = ["-c", Self.program, schema]
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        self.process = process
        input = stdin.fileHandleForWriting
        output = stdout.fileHandleForReading
        buffered = Data()
    }

    private func readLine() -> String? {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output!.availableData
            if chunk.isEmpty { return nil }
            buffered.append(chunk)
        }
    }
}
