/*
 * mime.c - the Content-Type of a dashboard file from its name, and which URL
 * paths may name one. Shared by the server (files read from --web-dir) and
 * the build's embedding generator (tools/webembed.c), so both answer the same.
 */
#include "http/http_int.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *ext;
	const char *type;
	bool text; /* worth compressing */
} types[] = {
    {".html", "text/html; charset=utf-8", true},
    {".js", "text/javascript; charset=utf-8", true},
    {".mjs", "text/javascript; charset=utf-8", true},
    {".css", "text/css; charset=utf-8", true},
    {".json", "application/json", true},
    {".map", "application/json", true},
    {".webmanifest", "application/manifest+json", true},
    {".svg", "image/svg+xml", true},
    {".txt", "text/plain; charset=utf-8", true},
    {".png", "image/png", false},
    {".jpg", "image/jpeg", false},
    {".jpeg", "image/jpeg", false},
    {".gif", "image/gif", false},
    {".webp", "image/webp", false},
    {".ico", "image/x-icon", true},
    {".woff2", "font/woff2", false},
    {".woff", "font/woff", false},
};

const char *http_mime_type(const char *path, bool *compressible)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(slash ? slash : path, '.');
	if (dot)
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (!strcasecmp(dot, types[i].ext)) {
				if (compressible)
					*compressible = types[i].text;
				return types[i].type;
			}
	if (compressible)
		*compressible = false;
	return "application/octet-stream";
}

bool http_web_path_ok(const char *u)
{
	if (u[0] != '/' || strstr(u, "//") || strstr(u, "/.") || strlen(u) > 512)
		return false;
	for (const char *p = u; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/._-", *p)))
			return false;
	return true;
}
