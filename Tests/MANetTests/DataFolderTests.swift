// ImageFolderDataset: torchvision's class and file order, RAF-DB names, extension filter, and the folder errors.

import Foundation
import XCTest
import MANet

/// Builds small image-folder trees in a temporary folder for the data tests.
struct DatasetTree {
    let root: URL

    init(_ test: XCTestCase) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("manet-data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        let root = self.root
        test.addTeardownBlock { try? FileManager.default.removeItem(at: root) }
    }

    /// Writes `relative` (e.g. "train/3/a.png") holding a `size`-pixel square of one grey `value`.
    @discardableResult
    func image(_ relative: String, value: UInt8 = 128, size: Int = 12) throws -> URL {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let image = RGBImage(width: size, height: size, fill: (value, value, value))
        let data = url.pathExtension.lowercased() == "png" ? try ImageCodec.encodePNG(image) : try ImageCodec.encodeJPEG(image, quality: 95)
        try data.write(to: url)
        return url
    }

    func file(_ relative: String, _ text: String) throws {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    func folder(_ relative: String) throws {
        try FileManager.default.createDirectory(at: root.appendingPathComponent(relative), withIntermediateDirectories: true)
    }
}

final class DataFolderTests: XCTestCase {
    func testRAFDBFoldersGetExpressionNames() throws {
        let tree = try DatasetTree(self)
        for label in 0..<7 { try tree.image("train/\(label)/x.jpg") }
        let dataset = try ImageFolderDataset(root: tree.root, split: .train)
        XCTAssertEqual(dataset.classNames, ["Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger"])
        XCTAssertEqual(dataset.classFolders, ["0", "1", "2", "3", "4", "5", "6"])
        XCTAssertEqual(dataset.samples.map(\.label), Array(0..<7))
    }

    func testOtherFoldersMapInSortedOrderAndFilesAreSorted() throws {
        let tree = try DatasetTree(self)
        try tree.image("train/sad/b.png")
        try tree.image("train/sad/A.PNG")
        try tree.image("train/Happy/z.JPEG")
        try tree.image("train/Happy/nested/a.jpg")
        try tree.image("train/Happy/m.jpg")
        try tree.file("train/Happy/readme.txt", "not an image")
        try tree.file("train/notes.txt", "a file beside the class folders is not a class")
        let dataset = try ImageFolderDataset(root: tree.root, split: .train)
        // Python's sorted(): upper case before lower case; os.walk order puts the folder's own
        // files before those of "Happy/nested" because "Happy" < "Happy/nested".
        XCTAssertEqual(dataset.classNames, ["Happy", "sad"])
        XCTAssertEqual(dataset.samples.map { $0.path.path.replacingOccurrences(of: tree.root.path + "/", with: "") },
                       ["train/Happy/m.jpg", "train/Happy/z.JPEG", "train/Happy/nested/a.jpg", "train/sad/A.PNG", "train/sad/b.png"])
        XCTAssertEqual(dataset.samples.map(\.label), [0, 0, 0, 1, 1])
        XCTAssertEqual(dataset.count, 5)
        XCTAssertEqual(dataset.classCounts, [3, 2])
    }

    func testMissingSplitIsAnErrorNamingThePath() throws {
        let tree = try DatasetTree(self)
        try tree.image("train/0/a.jpg")
        XCTAssertThrowsError(try ImageFolderDataset.load(root: tree.root)) { error in
            XCTAssertEqual(error as? DataError, .missingSplit(path: tree.root.appendingPathComponent("test").path))
            XCTAssertTrue("\(error)".contains(tree.root.appendingPathComponent("test").path))
        }
    }

    func testSplitWithoutClassFoldersIsAnError() throws {
        let tree = try DatasetTree(self)
        try tree.file("train/loose.jpg", "x")
        XCTAssertThrowsError(try ImageFolderDataset(root: tree.root, split: .train)) { error in
            XCTAssertEqual(error as? DataError, .noClassFolders(path: tree.root.appendingPathComponent("train").path))
        }
    }

    func testEmptyClassFolderIsAnErrorNamingIt() throws {
        let tree = try DatasetTree(self)
        try tree.image("test/0/a.jpg")
        try tree.folder("test/1")
        try tree.file("test/2/readme.txt", "only text")
        XCTAssertThrowsError(try ImageFolderDataset(root: tree.root, split: .test)) { error in
            XCTAssertEqual(error as? DataError, .emptyClassFolder(path: tree.root.appendingPathComponent("test/1").path))
            XCTAssertTrue("\(error)".contains("test/1"))
        }
    }

    func testTrainAndTestMustAgreeOnClasses() throws {
        let tree = try DatasetTree(self)
        try tree.image("train/0/a.jpg")
        try tree.image("train/1/a.jpg")
        try tree.image("test/0/a.jpg")
        XCTAssertThrowsError(try ImageFolderDataset.load(root: tree.root)) { error in
            XCTAssertEqual(error as? DataError, .classMismatch(train: ["0", "1"], test: ["0"]))
        }
    }

    func testSymlinksInsideTheRootAreFollowedAndOutsideAreRefused() throws {
        let tree = try DatasetTree(self)
        let shared = try tree.image("shared/face.png")
        try tree.image("train/0/a.png")
        try tree.folder("train/1")
        try FileManager.default.createSymbolicLink(at: tree.root.appendingPathComponent("train/1/link.png"), withDestinationURL: shared)
        let dataset = try ImageFolderDataset(root: tree.root, split: .train)
        XCTAssertEqual(dataset.count, 2)

        let outside = try DatasetTree(self)
        let foreign = try outside.image("elsewhere.png")
        let link = tree.root.appendingPathComponent("train/1/foreign.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: foreign)
        XCTAssertThrowsError(try ImageFolderDataset(root: tree.root, split: .train)) { error in
            guard case DataError.symlinkOutsideRoot(let path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, link.path)
        }
    }
}
