package assets

import (
	"mime"
	"path"
	"strings"
)

// webTypes are the content types of the files a web app is made of. They
// come first, so that they do not depend on the machine: the mime
// package also reads the system's tables (/etc/mime.types), which call
// .ts a Qt translation and .otf an OpenDocument template, and know
// neither .map nor .webmanifest.
var webTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".htm":         "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".mjs":         "text/javascript; charset=utf-8",
	".cjs":         "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".json":        "application/json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".wasm":        "application/wasm",
	".txt":         "text/plain; charset=utf-8",
	".xml":         "application/xml",
	".csv":         "text/csv; charset=utf-8",
	".pdf":         "application/pdf",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".apng":        "image/apng",
	".jpg":         "image/jpeg",
	".jpeg":        "image/jpeg",
	".gif":         "image/gif",
	".webp":        "image/webp",
	".avif":        "image/avif",
	".ico":         "image/x-icon",
	".bmp":         "image/bmp",
	".woff":        "font/woff",
	".woff2":       "font/woff2",
	".ttf":         "font/ttf",
	".otf":         "font/otf",
	".mp4":         "video/mp4",
	".webm":        "video/webm",
	".ogv":         "video/ogg",
	".mp3":         "audio/mpeg",
	".ogg":         "audio/ogg",
	".oga":         "audio/ogg",
	".wav":         "audio/wav",
	".flac":        "audio/flac",
	".vtt":         "text/vtt; charset=utf-8",
}

// refused are extensions never served, whatever the mime package says:
// the pre-compressed variants (chosen by Accept-Encoding, not by name),
// and source code, keys and leftovers that have no place in a built web
// directory.
var refused = map[string]bool{
	".br": true, ".gz": true,
	".go": true, ".ts": true, ".tsx": true, ".mts": true, ".cts": true,
	".py": true, ".rb": true, ".php": true, ".sh": true, ".pl": true,
	".pem": true, ".key": true, ".crt": true, ".p12": true, ".pfx": true,
	".bak": true, ".swp": true, ".orig": true, ".log": true, ".sql": true,
	".db": true, ".sqlite": true,
}

// contentType is the Content-Type a file is served with, from webTypes,
// else the mime package; false for a file that is not served.
func contentType(name string) (string, bool) {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" || refused[ext] {
		return "", false
	}
	if t, ok := webTypes[ext]; ok {
		return t, true
	}
	t := mime.TypeByExtension(ext)
	return t, t != ""
}

// compressible reports whether a file of this type gains from gzip or
// brotli (images, fonts and media but SVG are compressed already).
func compressible(ctype string) bool {
	t, _, _ := strings.Cut(ctype, ";")
	switch {
	case strings.HasPrefix(t, "text/"), t == "image/svg+xml", t == "application/wasm",
		t == "application/json", t == "application/manifest+json", t == "application/xml",
		t == "image/x-icon", t == "image/bmp", t == "font/ttf", t == "font/otf":
		return true
	}
	return false
}

// hashedName reports whether a file name carries a content hash, so that
// its content never changes under that name: a name ending, before its
// extension (and before .js or .css for a .map), in
//
//   - 16 or more hex digits after a dot or a dash (webpack's
//     [contenthash], Tether's tether.<hash>.wasm);
//   - 8 letters and digits after a dot or a dash, one of them a digit
//     (esbuild's default [hash], and most of Vite's);
//   - inside an assets/ directory (Vite's build.assetsDir), 8 letters,
//     digits, - and _ (Vite's base64url [hash]: a quarter of them have
//     no digit).
//
// Outside assets/ a word such as Inter-SemiBold.woff2 is not a hash. A
// file the rule misses is revalidated (no-cache), never served stale.
func hashedName(name string) bool {
	dir, base := path.Split(name)
	stem := strings.TrimSuffix(base, path.Ext(base))
	if path.Ext(base) == ".map" {
		stem = strings.TrimSuffix(stem, path.Ext(stem))
	}
	inAssets := dir == "assets/" || strings.HasSuffix(dir, "/assets/")
	for i := len(stem) - 1; i > 0; i-- {
		if stem[i] != '.' && stem[i] != '-' {
			continue
		}
		h := stem[i+1:]
		switch {
		case len(h) >= 16 && allHex(h):
			return true
		case len(h) == 8 && inAssets && hashChars(h, "-_"):
			return true
		case len(h) == 8 && hashChars(h, "") && strings.ContainsAny(h, "0123456789"):
			return true
		}
	}
	return false
}

func allHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
			return false
		}
	}
	return true
}

// hashChars reports whether s has only letters, digits and the runes in
// extra.
func hashChars(s, extra string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}
