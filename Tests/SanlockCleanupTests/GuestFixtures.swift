import Foundation
import TestFixtures

/// The XML fixtures (Tests/TestFixtures/guests).
enum GuestFixtures {
    static let directory = GuestFixtureFiles.directory

    static func path(_ name: String) -> String { GuestFixtureFiles.path(name) }

    static func text(_ name: String) throws -> String {
        try String(contentsOfFile: path(name), encoding: .utf8)
    }
}
