package devices

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/vward/vward"
)

// Mosquitto 2's password file keeps "user:$7$<iterations>$<salt>$<hash>":
// PBKDF2-HMAC-SHA512 over the password with a 12-byte random salt, 64 bytes
// of output, salt and hash in standard base64 with padding. This is what
// mosquitto_passwd writes (apps/mosquitto_passwd, src/password_mosq.c: hash
// type 7, SALT_LEN 12, PW_DEFAULT_ITERATIONS 101).
const (
	// MosquittoIterations is mosquitto_passwd's default. A device secret is
	// 256 random bits, so stretching adds nothing against guessing, and a
	// low count keeps a fleet's reconnect storm cheap for the broker.
	MosquittoIterations = 101
	mosquittoSaltLen    = 12
	mosquittoHashLen    = 64
)

// MosquittoHash returns password in Mosquitto 2's "$7$" password-file form,
// with a fresh random salt.
func MosquittoHash(password string) (string, error) {
	salt := make([]byte, mosquittoSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("make mosquitto salt: %w", err)
	}
	return mosquittoHash(password, salt, MosquittoIterations)
}

func mosquittoHash(password string, salt []byte, iterations int) (string, error) {
	key, err := pbkdf2.Key(sha512.New, password, salt, iterations, mosquittoHashLen)
	if err != nil {
		return "", fmt.Errorf("mosquitto hash: %w", err)
	}
	return fmt.Sprintf("$7$%d$%s$%s", iterations, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(key)), nil
}

// CheckMosquittoHash reports whether password matches a "$7$" hash, as
// Mosquitto checks it.
func CheckMosquittoHash(hash, password string) bool {
	parts := strings.Split(hash, "$")
	// "", "7", iterations, salt, hash
	if len(parts) != 5 || parts[0] != "" || parts[1] != "7" {
		return false
	}
	iter, err := strconv.Atoi(parts[2])
	if err != nil || iter < 1 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(parts[3])
	want, err2 := base64.StdEncoding.DecodeString(parts[4])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha512.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// MosquittoExport is the password files' content and what went into them:
// one for the devices' listener, one for vward's (deploy/mosquitto).
type MosquittoExport struct {
	Passwd        []byte           // the devices' password file
	ServicePasswd []byte           // vward's password file: the service account alone
	Devices       int              // devices written
	Skipped       []vward.DeviceID // devices with no Mosquitto hash (rotate their secret)
	ServiceUser   string           // the service account written
}

// ExportMosquittoPasswd writes Mosquitto 2 password files: one with every
// device whose Mosquitto hash the registry holds, and one with vward's
// service account alone (hashed now from servicePassword), for the two
// listeners of deploy/mosquitto/mosquitto.conf. Devices registered before vward kept
// that hash are skipped and listed: their secret exists only as SHA-256,
// from which no PBKDF2 hash can be made, so they need rotate-secret.
func (r *Registry) ExportMosquittoPasswd(ctx context.Context, serviceUser, servicePassword string) (MosquittoExport, error) {
	if err := validMosquittoUser(serviceUser); err != nil {
		return MosquittoExport{}, fmt.Errorf("service account: %w", err)
	}
	if servicePassword == "" {
		return MosquittoExport{}, invalidf("the service account %s needs a password", serviceUser)
	}
	rows, err := r.db.QueryContext(ctx, `SELECT id, secret_mosquitto FROM devices ORDER BY id`)
	if err != nil {
		return MosquittoExport{}, fmt.Errorf("export mosquitto passwords: %w", err)
	}
	defer rows.Close()
	sh, err := MosquittoHash(servicePassword)
	if err != nil {
		return MosquittoExport{}, err
	}
	out := MosquittoExport{ServiceUser: serviceUser, ServicePasswd: fmt.Appendf(nil, "%s:%s\n", serviceUser, sh)}
	var b bytes.Buffer
	for rows.Next() {
		var id, h string
		if err := rows.Scan(&id, &h); err != nil {
			return MosquittoExport{}, fmt.Errorf("export mosquitto passwords: %w", err)
		}
		if id == serviceUser {
			return MosquittoExport{}, conflictf("device %s has the service account's name; the ACL's pattern lines would mix them up", id)
		}
		if vward.IsServiceID(id) {
			// Registered before such ids were refused: its client id would
			// be one of vward's.
			return MosquittoExport{}, conflictf("device %s: ids beginning with %q are vward's own MQTT client ids; register the device again under another id", id, vward.ServiceIDPrefix)
		}
		if h == "" {
			out.Skipped = append(out.Skipped, vward.DeviceID(id))
			continue
		}
		fmt.Fprintf(&b, "%s:%s\n", id, h)
		out.Devices++
	}
	if err := rows.Err(); err != nil {
		return MosquittoExport{}, fmt.Errorf("export mosquitto passwords: %w", err)
	}
	out.Passwd = b.Bytes()
	return out, nil
}

// MosquittoACL returns a Mosquitto ACL file for device protocol v1: the
// service account reads every device's readings, SenML, status and
// questionnaires and writes their rejected topics; a device (username =
// device id, "%u") writes only its own of those, and reads only its own
// rejected topic. Unlike a "%u/#" grant, a device cannot forge its own
// rejection notices, matching the embedded broker.
func MosquittoACL(serviceUser string) ([]byte, error) {
	if err := validMosquittoUser(serviceUser); err != nil {
		return nil, fmt.Errorf("service account: %w", err)
	}
	p := vward.TopicPrefix
	return []byte(`# Mosquitto ACL for vward device protocol v1, written by
# "vward devices export-mosquitto". Anything not granted here is refused.
# Reload the broker after replacing it (kill -HUP, or docker compose kill -s HUP mosquitto).

# vward's service account.
user ` + serviceUser + `
topic read ` + p + `+/readings
topic read ` + p + `+/senml
topic read ` + p + `+/status
topic read ` + p + `+/questionnaire
topic write ` + p + `+/rejected

# Devices: the username is the device id. Pattern lines apply to every user.
pattern write ` + p + `%u/readings
pattern write ` + p + `%u/senml
pattern write ` + p + `%u/status
pattern write ` + p + `%u/questionnaire
pattern read ` + p + `%u/rejected
`), nil
}

// validMosquittoUser keeps a name out of the password file's syntax and
// out of the ACL's topic wildcards.
func validMosquittoUser(name string) error {
	if name == "" {
		return invalidf("user name is empty")
	}
	if strings.ContainsAny(name, ":/+#$ \t\r\n") {
		return invalidf("user name %q may not contain ':', '/', '+', '#', '$' or spaces", name)
	}
	return nil
}
