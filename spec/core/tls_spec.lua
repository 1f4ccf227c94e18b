-- TLS modes against a second private server started with --tls, and against
-- the main (plain) test server.
local db = require("support.db")
local core = db.core

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local function read_env(path)
  local env = {}
  for line in io.lines(path) do
    local k, v = line:match("^export ([%w_]+)=(.*)$")
    if k then env[k] = v:gsub("^'(.*)'$", "%1") end
  end
  return env
end

-- Value of a SHOW SESSION STATUS variable ("" when unset).
local function session_status(conn, name)
  local r = conn:execute("SHOW SESSION STATUS LIKE '" .. name .. "'")
  return r.rows[1] and r.rows[1].Value or ""
end

describe("core TLS", function()
  local tmp, certs, srvdir, port

  -- options for the TLS server over TCP 127.0.0.1
  local function tls_options(ssl, extra)
    local o = {
      host = "127.0.0.1", port = port, user = "ar", password = "ar_pass",
      database = "ar_test", ssl = ssl, connect_timeout = 10,
    }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end

  setup(function()
    local ok, out = sh("mktemp -d /tmp/ar-tls.XXXXXX")
    assert(ok, out)
    tmp = out:gsub("%s+$", "")
    certs = tmp .. "/certs"
    srvdir = tmp .. "/srv"
    ok, out = sh("bash scripts/make-test-certs.sh " .. certs)
    assert(ok, "make-test-certs.sh failed: " .. out)
    ok, out = sh("bash scripts/mariadb-server.sh start " .. srvdir .. " --tls " .. certs)
    assert(ok, "TLS server did not start: " .. out)
    port = tonumber(read_env(srvdir .. "/env.sh").AR_MYSQL_PORT)
    assert(port, "no port in " .. srvdir .. "/env.sh")
  end)

  teardown(function()
    if srvdir then sh("bash scripts/mariadb-server.sh destroy " .. srvdir) end
    if tmp then sh("rm -rf " .. tmp) end
  end)

  describe("verify_ca", function()
    it("connects with the right CA and the session is encrypted", function()
      local c = core.connect(tls_options { mode = "verify_ca", ca = certs .. "/ca.pem" })
      local cipher = c:ssl_cipher()
      assert.is_string(cipher)
      assert.is_true(#cipher > 0)
      assert.are.equal(cipher, session_status(c, "Ssl_cipher"))
      assert.truthy(session_status(c, "Ssl_version"):find("TLS", 1, true))
      assert.are.equal(1, c:execute("SELECT ? AS v", 1).rows[1].v)
      c:close()
    end)

    it("refuses a server whose certificate another CA signed", function()
      local err = db.error_of(core.connect,
        tls_options { mode = "verify_ca", ca = certs .. "/other-ca.pem" })
      assert.are.equal("ConnectionError", err.kind, tostring(err))
      assert.are.equal(2026, err.code, tostring(err))
    end)

    it("refuses when the CA file does not exist", function()
      local err = db.error_of(core.connect,
        tls_options { mode = "verify_ca", ca = certs .. "/no-such-ca.pem" })
      assert.are.equal("ConnectionError", err.kind, tostring(err))
    end)

    it("without ca or capath is a ConfigError, before any connection", function()
      local err = db.error_of(core.connect, tls_options { mode = "verify_ca" })
      assert.are.equal("ConfigError", err.kind)
      assert.truthy(err.message:find("ca", 1, true), err.message)
      err = db.error_of(core.connect, tls_options { mode = "verify_identity" })
      assert.are.equal("ConfigError", err.kind)
    end)
  end)

  describe("verify_identity", function()
    it("accepts 127.0.0.1, which the certificate names (IP SAN)", function()
      local c = core.connect(tls_options { mode = "verify_identity", ca = certs .. "/ca.pem" })
      assert.is_string(c:ssl_cipher())
      assert.are.equal(c:ssl_cipher(), session_status(c, "Ssl_cipher"))
      c:close()
    end)

    it("refuses a server whose certificate another CA signed", function()
      local err = db.error_of(core.connect,
        tls_options { mode = "verify_identity", ca = certs .. "/other-ca.pem" })
      assert.are.equal("ConnectionError", err.kind, tostring(err))
    end)
  end)

  describe("required", function()
    it("encrypts against the TLS server", function()
      local c = core.connect(tls_options { mode = "required" })
      assert.is_string(c:ssl_cipher())
      assert.are.equal(c:ssl_cipher(), session_status(c, "Ssl_cipher"))
      c:close()
    end)

    it("fails against a server without TLS instead of going plain", function()
      local o = db.options { ssl = { mode = "required" } }
      if not o.port then o.host, o.port, o.socket = "127.0.0.1", nil, nil end
      local err = db.error_of(core.connect, o)
      assert.are.equal("ConnectionError", err.kind, tostring(err))
      assert.truthy(tostring(err):lower():find("tls") or tostring(err):lower():find("ssl"),
        tostring(err))
    end)

    -- Connector/C 3.3 refuses a plain server before the login only when it
    -- verifies the server certificate, which verify_ca turns on: a wrong
    -- password must then never reach the server (no 1045 from it).
    it("verify_ca refuses a server without TLS before sending credentials", function()
      local o = db.options { ssl = { mode = "verify_ca", ca = certs .. "/ca.pem" }, password = "wrong" }
      if not o.port then o.host, o.port, o.socket = "127.0.0.1", nil, nil end
      local err = db.error_of(core.connect, o)
      assert.are.equal("ConnectionError", err.kind, tostring(err))
      assert.are_not.equal(1045, err.code, tostring(err))
      assert.truthy(tostring(err):lower():find("ssl") or tostring(err):lower():find("tls"), tostring(err))
    end)
  end)

  describe("preferred", function()
    it("encrypts when the server offers TLS", function()
      local c = core.connect(tls_options { mode = "preferred" })
      assert.is_string(c:ssl_cipher())
      c:close()
    end)

    it("connects in plain text to a server without TLS", function()
      local c = db.connect { ssl = { mode = "preferred" } }
      assert.is_nil(c:ssl_cipher())
      assert.are.equal("", session_status(c, "Ssl_cipher"))
      assert.are.equal(1, c:execute("SELECT 1 AS one").rows[1].one)
      c:close()
    end)

    it("is what an ssl table without mode means", function()
      local c = core.connect(tls_options {})
      assert.is_string(c:ssl_cipher())
      c:close()
    end)
  end)

  describe("disabled", function()
    it("stays plain even when the server offers TLS", function()
      local c = core.connect(tls_options { mode = "disabled" })
      assert.is_nil(c:ssl_cipher())
      assert.are.equal("", session_status(c, "Ssl_cipher"))
      c:close()
    end)
  end)

  it("a bad ssl mode is a ConfigError", function()
    local err = db.error_of(core.connect, tls_options { mode = "always" })
    assert.are.equal("ConfigError", err.kind)
    assert.truthy(err.message:find("always", 1, true), err.message)
  end)
end)
