def test_login_page(client):
    r = client.get("/login")
    assert r.status_code == 200
    assert b'<label for="email">Email</label>' in r.data


def test_login_as_admin(client, login_as):
    login_as("admin")
    r = client.get("/ops/")
    assert r.status_code == 200
