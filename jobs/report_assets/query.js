// The review app's "ask about an image": send a dropped or chosen file to /api/query, show the matching cards.
(function(){
 function init(){
  var input = document.getElementById('qfile');
  var results = document.getElementById('results');
  if (!input || !results) return;
  var box = document.createElement('section');
  box.id = 'qresults';
  box.className = 'qresults';
  box.hidden = true;
  results.parentNode.insertBefore(box, results);
  function show(text, html){
    box.hidden = false;
    box.textContent = '';
    var head = document.createElement('h2');
    head.id = 'qsummary';
    head.textContent = text;
    box.appendChild(head);
    var cards = document.createElement('div');
    cards.id = 'qcards';
    if (html) cards.innerHTML = html;  // cards rendered and escaped by the server (render_card)
    box.appendChild(cards);
    box.dataset.state = 'done';
  }
  function ask(file){
    if (!file) return;
    box.hidden = false;
    box.dataset.state = 'busy';
    box.textContent = 'asking the store about ' + file.name + ' …';
    fetch('api/query', {method: 'POST', headers: {'Content-Type': 'application/octet-stream',
                                                   'X-Filename': encodeURIComponent(file.name)}, body: file})
      .then(function(r){ return r.json().then(function(j){ return {ok: r.ok, body: j}; }); })
      .then(function(res){
        if (!res.ok) { show('query failed: ' + (res.body.error || 'unknown error'), ''); box.dataset.state = 'error'; return; }
        // summary text is escaped by the server; set as text anyway
        var tmp = document.createElement('div'); tmp.innerHTML = res.body.summary;
        show(tmp.textContent, res.body.html);
      })
      .catch(function(err){ show('query failed: ' + err, ''); box.dataset.state = 'error'; });
  }
  input.addEventListener('change', function(){ ask(input.files && input.files[0]); });
  document.addEventListener('dragover', function(ev){ ev.preventDefault(); document.body.classList.add('dropping'); });
  document.addEventListener('dragleave', function(){ document.body.classList.remove('dropping'); });
  document.addEventListener('drop', function(ev){
    ev.preventDefault();
    document.body.classList.remove('dropping');
    var files = ev.dataTransfer && ev.dataTransfer.files;
    if (files && files.length) ask(files[0]);
  });
}
 // this script sits in the toolbar, before the cards: wait for the whole page
 if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
