import Testing

extension DaemonTestEnvironment {
    /// Daemon tests run when they can, and under CI always (where a missing
    /// prerequisite then fails them instead of skipping them silently).
    static var shouldRun: Bool { available || mustRun }
}

@Suite("Test environment")
struct EnvironmentTests {
    @Test("Under CI the daemon tests have everything they need")
    func daemonPrerequisitesUnderCI() throws {
        try #require(DaemonTestEnvironment.mustRun || DaemonTestEnvironment.available,
                     "daemon tests skipped: \(DaemonTestEnvironment.missing ?? "")")
        #expect(DaemonTestEnvironment.missing == nil, "CI=true but \(DaemonTestEnvironment.missing ?? "")")
    }

    @Test("The janitor binary was built next to the tests")
    func binaryExists() {
        #expect(Command.exists(JanitorBinary.binary), "no executable at \(JanitorBinary.binary)")
    }
}
