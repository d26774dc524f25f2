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
enum ReportSchema {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("man/virt-sanlock-cleanup-report.schema.json").path

    /// Validates documents with a real JSON Schema validator (Python's
    /// jsonschema, Draft 2020-12); the result says what failed.
    static func validate(_ documents: [String]) async throws -> CommandResult {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("vsc-schema-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for (index, document) in documents.enumerated() {
            try document.write(toFile: directory + "/\(index).json", atomically: true, encoding: .utf8)
        }
        return try await Command.run(["python3", "-c", """
            import json, sys, glob
            from jsonschema import Draft202012Validator
            schema = json.load(open(sys.argv[1]))
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema)
            failed = False
            for path in sorted(glob.glob(sys.argv[2] + "/*.json")):
                for error in validator.iter_errors(json.load(open(path))):
                    print(path, list(error.path), error.message)
                    failed = True
            sys.exit(1 if failed else 0)
            """, path, directory], check: false)
    }
}
