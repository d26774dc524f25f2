import ArgumentParser
import SanlockCleanup

@main
struct VirtSanlockCleanup: ParsableCommand {
    func run() throws {}
}
